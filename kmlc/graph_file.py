"""The `.npz` file of a `kmlc.LabelGraph`: its counts and parameters.

Keys: `label_counts` `[D]`, `num_samples`, `params` (the graph's
constructor parameters as JSON) and the pair counts, either dense as
`pair_counts` `[D, D]` or as the CSR parts `pair_counts_data`,
`pair_counts_indices` and `pair_counts_indptr`. Read without pickle.
"""

import json
import os

import numpy as np
import scipy.sparse

from kmlc import io as kmlc_io


def write(path, pair_counts, label_counts, num_samples, params):
    """Writes a graph file atomically; returns `path`."""
    path = os.fspath(path)
    if scipy.sparse.issparse(pair_counts):
        pair_counts = scipy.sparse.csr_matrix(pair_counts)
        counts = {
            "pair_counts_data": pair_counts.data,
            "pair_counts_indices": pair_counts.indices,
            "pair_counts_indptr": pair_counts.indptr,
        }
    else:
        counts = {"pair_counts": pair_counts}
    with kmlc_io.atomic_path(path, suffix=".npz") as temp:
        np.savez_compressed(
            temp,
            **counts,
            label_counts=label_counts,
            num_samples=np.int64(num_samples),
            params=np.array(json.dumps(params)),
        )
    return path


def read(path):
    """`(pair_counts, label_counts, num_samples, params)` of a graph file;
    a file that is not one is a ValueError naming it."""
    try:
        data = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, ValueError) as error:
        message = f"Could not read a label graph from {path}: {error}"
        raise ValueError(message) from error
    if not isinstance(data, np.lib.npyio.NpzFile):
        # A plain .npy array: np.load returns it, not an archive.
        raise ValueError(
            f"Could not read a label graph from {path}: not an .npz "
            f"archive written by LabelGraph.save. Received: {type(data)}"
        )
    try:
        with data:
            params = json.loads(str(data["params"]))
            label_counts = data["label_counts"]
            if "pair_counts" in data:
                pair_counts = data["pair_counts"]
            else:
                pair_counts = scipy.sparse.csr_matrix(
                    (
                        data["pair_counts_data"],
                        data["pair_counts_indices"],
                        data["pair_counts_indptr"],
                    ),
                    shape=(len(label_counts), len(label_counts)),
                )
            return pair_counts, label_counts, int(data["num_samples"]), params
    except (KeyError, TypeError, ValueError) as error:
        message = f"Could not read a label graph from {path}: {error}"
        raise ValueError(message) from error
