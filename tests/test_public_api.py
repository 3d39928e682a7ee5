"""Pins the public names: adding or removing one is a deliberate act, reviewed here."""

from __future__ import annotations

import embedcraft

PUBLIC = {
    "BM25Encoder",
    "BagOfWordsEncoder",
    "BaseEncoder",
    "CatalogEntry",
    "Collection",
    "CorruptFileError",
    "DimensionMismatchError",
    "Document",
    "EmbedcraftError",
    "EncodeReport",
    "Encoded",
    "Encoder",
    "EmbeddingCache",
    "EncoderKind",
    "HashingEncoder",
    "Hit",
    "HnswSettings",
    "ImageEncoder",
    "InputError",
    "InputKind",
    "MeanPoolingEncoder",
    "MemoryCache",
    "MemoryIndex",
    "MissingDependencyError",
    "NotFittedError",
    "OneHotEncoder",
    "OutOfVocabularyError",
    "PixelsEncoder",
    "PostProcessedEncoder",
    "SIFEncoder",
    "StaticTransformerEncoder",
    "TextAnalyzer",
    "TextTable",
    "TfidfEncoder",
    "TfidfPoolingEncoder",
    "TopK",
    "TransformerEncoder",
    "UnknownEncoderError",
    "VectorCollection",
    "WordVectors",
    "evaluate_analogies",
    "evaluate_retrieval",
    "evaluate_sts",
    "evaluate_word_pairs",
    "list_encoders",
    "load_beir",
    "load_encoder",
    "load_word_vectors",
    "normalize",
    "open_collection",
    "read_texts",
    "reciprocal_rank_fusion",
    "similarity",
    "top_k",
    "weighted_fusion",
    "write_vectors",
    "__version__",
    "caching",
}


def test_public_names_are_pinned() -> None:
    assert set(embedcraft.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(embedcraft, name), name


def test_errors_share_one_base_and_keep_builtin_meaning() -> None:
    assert issubclass(embedcraft.InputError, ValueError)
    assert issubclass(embedcraft.UnknownEncoderError, KeyError)
    for name in PUBLIC:
        obj = getattr(embedcraft, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, embedcraft.EmbedcraftError), name


def test_encoder_contract_names_are_pinned() -> None:
    from embedcraft import encoders
    from embedcraft.encoders import contract

    assert set(contract.__all__) == {
        "CacheSetting", "CatalogEntry", "EncodeReport", "Encoded", "Encoder", "EncoderKind",
        "EncoderSpec", "InputKind", "Metric", "Vectors", "as_texts", "is_single_input",
    }  # fmt: skip
    assert set(encoders.__all__) == {
        "BM25Encoder", "BagOfWordsEncoder", "BaseEncoder", "CatalogEntry", "EncodeReport",
        "Encoded", "Encoder", "EncoderKind", "HashingEncoder", "InputKind", "MeanPoolingEncoder",
        "OneHotEncoder", "SIFEncoder", "TfidfEncoder", "TfidfPoolingEncoder", "as_texts",
    }  # fmt: skip


def test_package_is_typed() -> None:
    from importlib import resources

    assert resources.files("embedcraft").joinpath("py.typed").is_file()


def test_store_names_are_pinned() -> None:
    import embedcraft.store

    assert set(embedcraft.store.__all__) == {
        "Collection",
        "Condition",
        "Document",
        "Filter",
        "HnswSettings",
        "PostgresCollection",
        "SearchMode",
        "StoredVectors",
        "VectorCollection",
        "is_collection_folder",
        "is_postgres_url",
        "open_collection",
        "read_collection",
        "parse_filter",
        "parse_where",
        "read_documents",
    }


def test_recommend_names_are_pinned() -> None:
    import embedcraft.recommend

    assert set(embedcraft.recommend.__all__) == {
        "ALSRecommender",
        "ContentRecommender",
        "HybridRecommender",
        "Interactions",
        "Item2VecRecommender",
        "PopularityRecommender",
        "Recommendation",
        "Recommender",
        "evaluate_cold_start",
        "evaluate_recommender",
        "leave_last_out",
        "read_interactions",
        "read_movielens_items",
    }


def test_compare_names_are_pinned() -> None:
    import embedcraft.compare

    assert set(embedcraft.compare.__all__) == {
        "AnalogyTask",
        "CannotRun",
        "Cell",
        "ClassificationTask",
        "ClusteringTask",
        "ImageClassificationTask",
        "Comparison",
        "EncoderSpec",
        "LabelledTexts",
        "Outcome",
        "RetrievalTask",
        "SpeedTask",
        "StsTask",
        "Task",
        "WordSimilarityTask",
        "compare_encoders",
        "plot_quality_speed",
        "quality_summary",
        "read_labelled",
        "to_csv",
        "to_markdown",
        "to_text",
    }
    assert all(hasattr(embedcraft.compare, name) for name in embedcraft.compare.__all__)
