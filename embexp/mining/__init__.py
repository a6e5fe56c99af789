"""Hard-negative mining (:mod:`embexp.mining.miner`) and the negative curriculum
(:mod:`embexp.mining.curriculum`); ``embexp-mine`` is :mod:`embexp.cli.mine`."""

from embexp.mining.miner import MiningParams, MiningResult, Negative, mine

__all__ = ["MiningParams", "MiningResult", "Negative", "mine"]
