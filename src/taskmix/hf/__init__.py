"""Hugging Face: *replay* a schedule (:mod:`.replay`: ``ScheduleTrainer``, ``TaskProportionCallback``,
``datasets.interleave_datasets`` stages) or *learn* one while training (:mod:`.learn`: ``MixerTrainer``).
Needs the ``text`` extra (transformers, datasets).
"""

from .learn import MixerCallback, MixerSampler, MixerTrainer, MixerTrainerMixin
from .replay import ScheduleTrainer, TaskProportionCallback, interleave_stages, to_interleave_stages

__all__ = ["MixerCallback", "MixerSampler", "MixerTrainer", "MixerTrainerMixin", "ScheduleTrainer", "TaskProportionCallback",
           "interleave_stages", "to_interleave_stages"]
