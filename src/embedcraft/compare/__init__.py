"""Compare encoders on the user's own data: one table of quality, speed and memory.

from embedcraft.compare import StsTask, SpeedTask, compare_encoders, to_text
result = compare_encoders(["tfidf", "minilm-l6"], [StsTask(path="sts-test.tsv"), ...])
print(to_text(result))
"""

from ._report import plot_quality_speed, quality_summary, to_csv, to_markdown, to_text
from ._runner import Cell, Comparison, EncoderSpec, compare_encoders
from ._tasks import (
    AnalogyTask,
    CannotRun,
    ClassificationTask,
    ClusteringTask,
    ImageClassificationTask,
    LabelledTexts,
    Outcome,
    RetrievalTask,
    SpeedTask,
    StsTask,
    Task,
    WordSimilarityTask,
    read_labelled,
)

__all__ = [
    "AnalogyTask",
    "CannotRun",
    "Cell",
    "ClassificationTask",
    "ClusteringTask",
    "Comparison",
    "EncoderSpec",
    "ImageClassificationTask",
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
]
