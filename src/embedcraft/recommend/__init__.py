"""Recommendations from interaction logs: popularity, item2vec and ALS, and their evaluation."""

from __future__ import annotations

from .content import ContentRecommender, HybridRecommender, read_movielens_items
from .interactions import Interactions, leave_last_out, read_interactions
from .metrics import evaluate_cold_start, evaluate_recommender
from .models import ALSRecommender, Item2VecRecommender, PopularityRecommender
from .recommender import Recommendation, Recommender

__all__ = [
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
]
