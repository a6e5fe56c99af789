from embexp.data.beir import load_beir
from embexp.data.prepare import PreparedData, load_dataset, prepare_data
from embexp.data.types import Corpus, Qrels, RetrievalDataset, TrainExample

__all__ = [
    "Corpus",
    "PreparedData",
    "Qrels",
    "RetrievalDataset",
    "TrainExample",
    "load_beir",
    "load_dataset",
    "prepare_data",
]
