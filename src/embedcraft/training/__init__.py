"""Training static word vectors: Word2Vec and FastText (gensim), GloVe (ours)."""

from __future__ import annotations

from .corpus import TokenStream
from .gensim_models import TrainingReport, train_fasttext, train_word2vec
from .glove import GloveResult, train_glove

__all__ = [
    "GloveResult",
    "TokenStream",
    "TrainingReport",
    "train_fasttext",
    "train_glove",
    "train_word2vec",
]
