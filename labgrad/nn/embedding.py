"""``Embedding``: a learned lookup table from integer ids (words, items) to vectors."""
from __future__ import annotations

from .. import functional as F
from ..creation import zeros
from ..errors import DTypeError
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """Row ``i`` of ``weight`` (num_embeddings, embedding_dim) for each id ``i`` in the input.

    Equivalent to ``one_hot(ids) @ weight`` but without building the one-hot matrix: it is
    indexing, ``weight[ids]``, which works eagerly, under ``lg.jit`` and in static graphs. Only
    the rows that were looked up receive gradient. Weights start ~ N(0, 1), as in PyTorch.

    >>> emb = nn.Embedding(10, 4)
    >>> emb(lg.tensor([[1, 2], [3, 1]])).shape
    (2, 2, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, dtype=None, device=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = Parameter(zeros(self.num_embeddings, self.embedding_dim, dtype=dtype, device=device))
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, ids):
        if ids.dtype.kind not in "iu":
            raise DTypeError(f"Embedding: ids must be integers (indices into a table of "
                             f"{self.num_embeddings} rows), got dtype {ids.dtype}; convert with "
                             f"ids.astype('int64')")
        return F.embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
