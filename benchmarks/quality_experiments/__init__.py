"""Research experiments on the paper's heads on Corel-5k (issue 9).

Heads trained on the cached feature maps of a frozen, ImageNet-pretrained
EfficientNet-Lite0, in memory, with their own training loop, so that many
variants, controls and seeds fit on one CPU core. See
`benchmarks/results/quality_research.md`.
"""
