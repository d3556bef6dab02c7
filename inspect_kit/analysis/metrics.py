"""How faithful an embedding is: trustworthiness and k-nearest-neighbour label accuracy.

- *Trustworthiness* (Venna & Kaski 2001; the definition of
  :func:`sklearn.manifold.trustworthiness`): 1 when every point's neighbours in the embedding
  are also its neighbours in the original space, lower when the map invents neighbourhoods.
- *kNN accuracy*: leave-one-out accuracy of a k-nearest-neighbour vote of the labels. Computed
  in the embedding and in the original space, it tells whether the map keeps the class
  structure that the features have (the two numbers should be close).

Trustworthiness is scikit-learn's; the kNN accuracies work through a neighbour index.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 10)); y = (X[:, 0] > 0).astype(int)
>>> round(trustworthiness(X, X[:, :2], n_neighbors=5), 2) < 1.0
True
>>> knn_accuracy(X[:, :1], y, n_neighbors=5) > 0.9
True
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import NearestNeighbors


def _check_pair(X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
    if len(X) != len(Z):
        raise ValueError(f"X has {len(X)} samples but the embedding has {len(Z)}")
    return X, Z


def _neighbors(Z: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k nearest neighbours of each row of Z, excluding itself."""
    found: np.ndarray = NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(return_distance=False)
    return found


def trustworthiness(X: np.ndarray, Z: np.ndarray, n_neighbors: int = 10) -> float:
    """Trustworthiness of embedding ``Z`` of ``X``, in [0, 1] (1 = no false neighbours).

    :func:`sklearn.manifold.trustworthiness` (Euclidean) with its neighbourhood size checked:
    the quality metrics run on at most a few thousand rows, where its N x N matrices fit.

    Parameters
    ----------
    X : ndarray (N, D)
        Original features.
    Z : ndarray (N, k)
        Embedding.
    n_neighbors : int
        Neighbourhood size; must be < N / 2.

    Returns
    -------
    float

    Examples
    --------
    >>> X = np.random.default_rng(1).normal(size=(50, 3))
    >>> trustworthiness(X, X, n_neighbors=5)
    1.0
    """
    X, Z = _check_pair(X, Z)
    n, k = len(X), int(n_neighbors)
    if not 1 <= k < n / 2:
        raise ValueError(f"n_neighbors must be in [1, N/2) = [1, {n / 2:g}); got {n_neighbors}")
    return float(sk_trustworthiness(X, Z, n_neighbors=k))


def _vote(neighbor_labels: np.ndarray) -> np.ndarray:
    """Majority label per row (ties go to the smallest code)."""
    n_classes = int(neighbor_labels.max()) + 1 if neighbor_labels.size else 1
    counts = np.zeros((len(neighbor_labels), n_classes), dtype=np.int64)
    np.add.at(
        counts,
        (
            np.repeat(np.arange(len(neighbor_labels)), neighbor_labels.shape[1]),
            neighbor_labels.ravel(),
        ),
        1,
    )
    winner: np.ndarray = counts.argmax(axis=1)
    return winner


def knn_accuracy(Z: np.ndarray, y: np.ndarray, n_neighbors: int = 10) -> float:
    """Leave-one-out accuracy of a ``n_neighbors``-NN majority vote of labels ``y`` in ``Z``.

    Examples
    --------
    >>> knn_accuracy(np.array([[0.], [0.1], [5.], [5.1]]), np.array([0, 0, 1, 1]), 1)
    1.0
    """
    Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
    _, codes = np.unique(np.asarray(y), return_inverse=True)
    if len(codes) != len(Z):
        raise ValueError(f"{len(Z)} points but {len(codes)} labels")
    if not 1 <= n_neighbors < len(Z):
        raise ValueError(f"n_neighbors must be in [1, N) = [1, {len(Z)}); got {n_neighbors}")
    nn = _neighbors(Z, n_neighbors)
    return float(np.mean(_vote(codes[nn]) == codes))


def knn_transfer_accuracy(
    Z_ref: np.ndarray,
    y_ref: np.ndarray,
    Z_new: np.ndarray,
    y_new: np.ndarray,
    n_neighbors: int = 10,
) -> float:
    """Accuracy of labelling new points by their ``n_neighbors`` nearest reference points.

    Measures whether samples placed into an existing map (``transform``) land near their class.

    Examples
    --------
    >>> knn_transfer_accuracy(np.array([[0.], [5.]]), [0, 1], np.array([[0.2], [4.]]), [0, 1], 1)
    1.0
    """
    Z_ref = np.asarray(Z_ref, dtype=np.float64).reshape(len(Z_ref), -1)
    Z_new = np.asarray(Z_new, dtype=np.float64).reshape(len(Z_new), -1)
    classes, ref_codes = np.unique(np.asarray(y_ref), return_inverse=True)
    nn = (
        NearestNeighbors(n_neighbors=n_neighbors)
        .fit(Z_ref)
        .kneighbors(Z_new, return_distance=False)
    )
    pred = classes[_vote(ref_codes[nn])]
    return float(np.mean(pred == np.asarray(y_new)))


def embedding_quality(
    X: np.ndarray,
    Z: np.ndarray,
    y: np.ndarray | None = None,
    n_neighbors: int = 10,
) -> dict[str, float | int | None]:
    """Trustworthiness and kNN accuracy (embedding and original space) in one dict.

    Returns
    -------
    dict
        ``trustworthiness``, ``knn_accuracy`` (in the embedding), ``knn_accuracy_original``
        (in ``X``; None without labels), ``n_neighbors``, ``n_samples``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> sorted(embedding_quality(X, X[:, :2], (X[:, 0] > 0)))[:2]
    ['knn_accuracy', 'knn_accuracy_original']
    """
    X, Z = _check_pair(X, Z)
    k = int(min(n_neighbors, max(1, (len(X) - 1) // 2)))
    out: dict[str, float | int | None] = {
        "trustworthiness": trustworthiness(X, Z, k),
        "knn_accuracy": None,
        "knn_accuracy_original": None,
        "n_neighbors": k,
        "n_samples": len(X),
    }
    if y is not None:
        out["knn_accuracy"] = knn_accuracy(Z, y, k)
        out["knn_accuracy_original"] = knn_accuracy(X, y, k)
    return out
