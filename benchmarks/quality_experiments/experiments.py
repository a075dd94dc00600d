"""The experiments: named groups of variants (settings over `run.DEFAULTS`)."""


def _with_controls(name, settings):
    """A variant and its identity and shuffled controls (same parameters)."""
    return {
        name: settings,
        f"{name} [identity]": dict(settings, control="identity"),
        f"{name} [shuffled]": dict(settings, control="shuffled"),
    }


def _merge(*groups):
    out = {}
    for group in groups:
        out.update(group)
    return out


ALL = {
    # 1. Fair tuning: learning rate and epochs of the baseline (pooled,
    # cheap) and of the heads.
    "lr-baseline": {
        f"baseline lr={lr:g} ep={ep}": {"head": "baseline", "lr": lr, "epochs": ep}
        for lr in (1e-3, 3e-3, 1e-2, 3e-2)
        for ep in (12, 30)
    },
    "lr-gcn": {
        f"gcn lr={lr:g} ep={ep}": {"head": "gcn", "lr": lr, "epochs": ep}
        for lr in (1e-3, 3e-3, 1e-2)
        for ep in (12, 30)
    },
    "lr-full": {
        f"full lr={lr:g} ep={ep}": {"head": "full", "lr": lr, "epochs": ep}
        for lr, ep in ((1e-3, 12), (3e-3, 12), (1e-2, 12), (3e-3, 30))
    },
    "loss": {
        "baseline asl": {"head": "baseline", "loss": "asl"},
        "gcn asl": {"head": "gcn", "loss": "asl"},
        "full asl": {"head": "full", "loss": "asl"},
    },
    "aux": {f"full aux={a:g}": {"head": "full", "aux": a} for a in (0.0, 0.3, 3.0)},
    # 2. The gcn head's dependence on the graph (pooled features, cheap).
    "gcn-graph": _merge(
        *[
            _with_controls(f"gcn tau={tau} p={p}", {"head": "gcn", "tau": tau, "p": p})
            for tau, p in ((0.3, 0.2), (0.4, 0.2), (0.5, 0.2), (0.4, None), (0.4, 0.5))
        ],
        *[
            _with_controls(
                f"gcn topk k={k}", {"head": "gcn", "strategy": "topk", "k": k, "p": 0.2}
            )
            for k in (3, 10)
        ],
        _with_controls("gcn paper", {"head": "gcn", "strategy": "paper", "p": None}),
    ),
    "gcn-layers": {
        f"gcn layers={n}": {"head": "gcn", "gcn_layers": n} for n in (1, 2, 3)
    },
    "gcn-nodedim": {
        f"gcn node_dim={d}": {"head": "gcn", "node_dim": d} for d in (20, 40, 100)
    },
    "gcn-headlr": {
        f"gcn head_lr x{m:g}": {"head": "gcn", "head_lr_mult": m}
        for m in (0.1, 0.3, 3.0)
    },
    # 3. Prototypes from the literature.
    "mlgcn": _merge(
        _with_controls("mlgcn learned", {"head": "mlgcn"}),
        _with_controls("mlgcn onehot", {"head": "mlgcn", "embedding": "onehot"}),
        _with_controls(
            "mlgcn learned no-linear", {"head": "mlgcn", "with_linear": False}
        ),
    ),
    "refine": _merge(
        _with_controls("refine", {"head": "refine", "lr": 1e-2}),
        {"refine dense": {"head": "refine", "mode": "dense", "lr": 1e-2}},
    ),
}

ALL["lr-gcn20"] = {
    f"gcn20 lr={lr:g} ep={ep}": {"head": "gcn", "node_dim": 20, "lr": lr, "epochs": ep}
    for lr, ep in ((1e-3, 8), (3e-3, 8), (1e-2, 8), (1e-3, 16))
}
ALL["graphreg"] = _merge(
    *[
        _with_controls(
            f"graphreg lam={lam:g}",
            {"head": "graphreg", "lam": lam, "lr": 1e-2, "epochs": 12},
        )
        for lam in (0.1, 1.0, 10.0)
    ]
)

_G20 = {"head": "gcn", "node_dim": 20, "lr": 1e-2, "epochs": 8}
ALL["gcn20-fix"] = {
    "gcn20 ep=4": dict(_G20, epochs=4),
    "gcn20 zero-init": dict(_G20, zero_init=True),
    "gcn20 head_lr x0.1": dict(_G20, head_lr_mult=0.1),
    "gcn20 zero-init head_lr x0.1": dict(_G20, zero_init=True, head_lr_mult=0.1),
    "gcn20 wd=0.05": dict(_G20, wd=0.05),
}

ALL["graphreg-small"] = _merge(
    *[
        {
            f"graphreg lam={lam:g}": {"head": "graphreg", "lam": lam, "lr": 1e-2},
            f"graphreg lam={lam:g} [shuffled]": {
                "head": "graphreg",
                "lam": lam,
                "lr": 1e-2,
                "control": "shuffled",
            },
        }
        for lam in (1e-3, 3e-3, 1e-2, 3e-2)
    ]
)

# 4. Seeds and controls for the settings chosen above.
ALL["seeds-pooled"] = _merge(
    {
        "baseline lr=0.01 ep=12": {"head": "baseline", "lr": 1e-2, "epochs": 12},
        "baseline lr=0.003 ep=30": {"head": "baseline", "lr": 3e-3, "epochs": 30},
    },
    _with_controls("gcn20 lr=0.01 ep=4", dict(_G20, epochs=4)),
)
ALL["seeds-full"] = _with_controls(
    "full lr=0.003 ep=6", {"head": "full", "lr": 3e-3, "epochs": 6}
)


# The gcn head's settings at the chosen schedule (node_dim 20, lr 1e-2, 4
# epochs): density, depth, width, loss; each graph with its shuffled
# control (the identity control is the same for every density).
_G4 = dict(_G20, epochs=4)
ALL["gcn4-graph"] = _merge(
    *[
        {
            name: dict(_G4, **settings),
            f"{name} [shuffled]": dict(_G4, **settings, control="shuffled"),
        }
        for name, settings in (
            ("gcn20 tau=0.3 p=0.2", {"tau": 0.3}),
            ("gcn20 tau=0.5 p=0.2", {"tau": 0.5}),
            ("gcn20 tau=0.4 p=none", {"p": None}),
            ("gcn20 tau=0.4 p=0.5", {"p": 0.5}),
            ("gcn20 topk k=3", {"strategy": "topk", "k": 3}),
            ("gcn20 topk k=10", {"strategy": "topk", "k": 10}),
            ("gcn20 paper p=none", {"strategy": "paper", "p": None}),
        )
    ]
)
ALL["gcn4-shape"] = {
    **{f"gcn20 layers={n}": dict(_G4, gcn_layers=n) for n in (1, 2, 3)},
    **{f"gcn node_dim={d}": dict(_G4, node_dim=d) for d in (40, 70, 100)},
    "gcn20 asl": dict(_G4, loss="asl"),
    "baseline asl lr=0.01 ep=12": {"head": "baseline", "loss": "asl", "lr": 1e-2},
}
ALL["full-tune"] = {
    "full lr=0.001 ep=12": {"head": "full", "lr": 1e-3, "epochs": 12},
    "full lr=0.01 ep=6": {"head": "full", "lr": 1e-2, "epochs": 6},
    "full lr=0.003 ep=12": {"head": "full", "lr": 3e-3, "epochs": 12},
    "full lr=0.003 ep=6 asl": {"head": "full", "lr": 3e-3, "epochs": 6, "loss": "asl"},
    "full lr=0.003 ep=6 aux=0": {"head": "full", "lr": 3e-3, "epochs": 6, "aux": 0.0},
}
