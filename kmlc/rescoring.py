"""Co-occurrence re-scoring outside the layer: its statistics, and gamma.

`kmlc.layers.CooccurrenceRescoring` moves each logit by how likely the
image's other labels make that label (TG of eq. 4 against the label's
frequency). Here, in NumPy:

- `statistics(graph)`: the layer's TG and P(j) from a `LabelGraph`, with
  the graph's ablation control applied as it is to the adjacency
  (`shuffled`: the same permutation of the labels, on TG and P(j) alike;
  `identity`: no co-occurrence and no base rates, so nothing moves);
- `rescore(logits, ...)`: the layer's formula, for scoring many gammas;
- `choose_gamma(logits, labels, graph)`: the gamma of a grid with the best
  mAP of the re-scored logits. Give it out-of-fold logits of the
  *training* split (`out_of_fold_logits`), never the validation split's,
  or the choice is tuned on what it is then scored on.
"""

import numpy as np
import scipy.sparse

from kmlc import graph_rules

# The grid `choose_gamma` searches (on Corel-5k with frozen Lite0 features
# the out-of-fold mAP peaks near 2 and falls slowly after).
GAMMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
EPSILON = 1e-3


def checked_gamma(
    gamma,
    field="rescoring_gamma",
    allowed="a number >= 0 (0: off; a training config's 'auto' is resolved "
    "by kmlc.train)",
):
    """`gamma` as a float >= 0 (0: no re-scoring); errors name `field`."""
    try:
        value = float(gamma)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(gamma, bool) or not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{field} must be {allowed}. Received: {field}={gamma!r}")
    return value


def statistics(graph):
    """`(TG [D, D], P(j) [D])` of a `LabelGraph`, float32, control applied.

    TG is `graph.conditional` (a scipy CSR matrix for a sparse graph), P(j)
    the label counts over the images counted. The control: `"shuffled"`
    permutes the labels of both with the permutation that shuffles the
    adjacency (the statistics of the training labels with their columns
    permuted); `"identity"` gives zeros for both (the re-scoring then
    changes nothing, as with independent labels).
    """
    conditional = graph.conditional
    prior = graph.label_counts / max(graph.num_samples, 1)
    if graph.control == "identity":
        prior = np.zeros_like(prior)
    elif graph.control == "shuffled":
        prior = prior[graph_rules.permutation(graph.num_labels, graph.control_seed)]
    conditional = graph_rules.control(conditional, graph.control, graph.control_seed)
    return conditional.astype(np.float32), prior.astype(np.float32)


def rescore(logits, conditional, prior, gamma, epsilon=EPSILON):
    """The re-scored logits `[N, D]`, float64 (the layer's formula)."""
    logits = np.asarray(logits, np.float64)
    p = 1.0 / (1.0 + np.exp(-logits))
    total = np.maximum(p.sum(axis=1, keepdims=True), 1e-30)
    if scipy.sparse.issparse(conditional):
        mass = np.asarray((conditional.T @ p.T).T)
    else:
        mass = p @ np.asarray(conditional, np.float64)
    boost = np.log(epsilon + mass / total) - np.log(
        epsilon + np.asarray(prior, np.float64)
    )
    return logits + gamma * boost


def choose_gamma(logits, labels, graph, gammas=GAMMAS, epsilon=EPSILON):
    """The gamma whose re-scored logits have the best mAP.

    Args:
        logits: `[N, D]`, out-of-fold logits of the training split.
        labels: `[N, D]` multi-hot, their labels.
        graph: the `LabelGraph` of the training split (its control
            applies, see `statistics`).
        gammas: the grid, each >= 0; ties go to the earlier one. Defaults
            to `GAMMAS`.
        epsilon: as in the layer. Defaults to 1e-3.

    Returns:
        `(gamma, {gamma: mAP})`.
    """
    from kmlc.metrics import mean_average_precision

    logits, labels = np.asarray(logits), np.asarray(labels)
    expected = (len(logits), graph.num_labels)
    if logits.shape != expected or labels.shape != expected:
        raise ValueError(
            f"logits and labels must both be [N, {graph.num_labels}] (the "
            f"graph's labels). Received: logits {logits.shape}, labels "
            f"{labels.shape}"
        )
    gammas = [float(g) for g in gammas]
    if not gammas or min(gammas) < 0:
        raise ValueError(f"gammas must be numbers >= 0. Received: {gammas}")
    conditional, prior = statistics(graph)
    scores = {
        g: mean_average_precision(
            labels, rescore(logits, conditional, prior, g, epsilon)
        )
        for g in gammas
    }
    best = max(gammas, key=lambda g: (scores[g], -gammas.index(g)))
    return best, scores


def out_of_fold_logits(features, labels, fit_predict, folds=5, seed=0):
    """Each row's logits from a model fitted on the other folds.

    Args:
        features: `[N, ...]`.
        labels: `[N, D]`.
        fit_predict: `(train_features, train_labels, held_features) ->
            held logits [n, D]`.
        folds: int >= 2. Defaults to 5.
        seed: int. The random assignment of rows to folds.

    Returns:
        `[N, D]` float32.
    """
    labels = np.asarray(labels)
    if int(folds) < 2 or len(labels) < int(folds):
        raise ValueError(
            f"Out-of-fold logits need folds >= 2 and at least as many rows. "
            f"Received: folds={folds}, {len(labels)} rows"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    out = np.zeros(labels.shape, np.float32)
    for fold in range(int(folds)):
        held = np.sort(order[fold :: int(folds)])
        kept = np.setdiff1d(order, held)
        out[held] = fit_predict(features[kept], labels[kept], features[held])
    return out
