"""Training static word vectors: Word2Vec and FastText (gensim), GloVe (ours)."""
