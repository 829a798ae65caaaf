"""Group-aware batching for lightningrl: the rollouts of one task (a GRPO group) land in one optimizer step.

GRPO-style advantages are normalized within a group (the rollouts of one ``task_id``; a row without one is its
own group, as in the converters' ``credit.py``). If a group's rollouts are spread over several optimizer steps,
each step sees only part of the contrast "this answer beat that one", so :class:`GroupBatchSampler` packs whole
groups into steps:

* an optimizer step holds at most ``per_device_train_batch_size x gradient_accumulation_steps x num_processes``
  rows (its *capacity*); groups are shuffled (seeded by ``seed`` and the epoch) and packed greedily, a group that
  does not fit starting the next step, so steps can be smaller than the capacity (the loss is normalized by the
  step's real token/sequence counts, so a smaller step is not weighted differently per token);
* a group larger than the capacity is split over consecutive steps (counted in ``groups_split``); so is one that
  would otherwise leave a micro-batch of a step empty;
* each step's rows are dealt, in order, into ``gradient_accumulation_steps x num_processes`` contiguous
  micro-batches of near-equal size, ordered so that accelerate's ``BatchSamplerShard`` (rank ``r`` takes batches
  ``r, r + W, ...``) gives every rank ``gradient_accumulation_steps`` of them per step: with several ranks a group
  may sit on several ranks, but always inside the same optimizer step;
* ``num_iterations`` > 1 repeats each step's micro-batches that many times in a row (PPO epochs over the batch,
  TRL's ``num_iterations``); each index is yielded as ``(row, iteration)`` so the trainer knows which pass it is.

The sampler has no ``batch_size`` attribute, which is how ``BatchSamplerShard`` accepts variable-size batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence


def pack_steps(
    groups: Sequence[Sequence[int]], capacity: int, micro_batches: int, rng: random.Random
) -> tuple[list[list[int]], int]:
    """Shuffle ``groups`` and pack them into optimizer steps of at most ``capacity`` rows; also return how many
    groups had to be split. Every step gets at least ``micro_batches`` rows (so no micro-batch is empty)."""
    order = list(range(len(groups)))
    rng.shuffle(order)
    steps: list[list[int]] = []
    cur: list[int] = []
    split = 0
    for gi in order:
        rest = list(groups[gi])
        was_split = False
        while rest:
            room = capacity - len(cur)
            if len(rest) <= room:
                cur += rest
                rest = []
            elif len(cur) >= micro_batches and len(rest) <= capacity:
                steps.append(cur)  # close this step; the whole group starts the next one
                cur = []
            else:  # larger than a step, or the step would be too small to feed every micro-batch
                cur += rest[:room]
                rest = rest[room:]
                was_split = True
                steps.append(cur)
                cur = []
            if len(cur) == capacity:
                steps.append(cur)
                cur = []
        split += was_split
    if cur:
        if len(cur) >= micro_batches or not steps:
            steps.append(cur)
        else:  # too few rows left to give every micro-batch one: they join the last step
            steps[-1] += cur
    return steps, split


def split_step(step: Sequence[int], micro_batches: int) -> list[list[int]]:
    """``step``'s rows in order, cut into ``micro_batches`` contiguous near-equal parts."""
    n = len(step)
    base, extra = divmod(n, micro_batches)
    out, start = [], 0
    for j in range(micro_batches):
        size = base + (1 if j < extra else 0)
        out.append(list(step[start : start + size]))
        start += size
    return out


class GroupBatchSampler:
    """Yields micro-batches of ``(row, iteration)`` indices; see the module docstring for the rules."""

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        *,
        per_device_batch_size: int,
        gradient_accumulation_steps: int,
        num_processes: int = 1,
        num_iterations: int = 1,
        seed: int = 0,
    ) -> None:
        self.groups = [list(g) for g in groups if len(g)]
        self.micro_batches = gradient_accumulation_steps * num_processes
        self.capacity = per_device_batch_size * self.micro_batches
        n_rows = sum(len(g) for g in self.groups)
        if n_rows < self.micro_batches:
            raise ValueError(
                f"lightningrl has {n_rows} row(s) but one optimizer step needs at least "
                f"{self.micro_batches} (gradient_accumulation_steps x processes); lower gradient_accumulation_steps."
            )
        self.num_iterations = num_iterations
        self.seed = seed
        self.epoch = 0
        self._plans: dict[int, tuple[list[list[int]], int]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer at each epoch: a new shuffle of groups (deterministic in seed and epoch)."""
        self.epoch = epoch

    def plan(self, epoch: int | None = None) -> list[list[int]]:
        """The optimizer steps (lists of rows) of ``epoch`` (default: the current one)."""
        return self._plan(self.epoch if epoch is None else epoch)[0]

    def groups_split(self, epoch: int | None = None) -> int:
        return self._plan(self.epoch if epoch is None else epoch)[1]

    def _plan(self, epoch: int) -> tuple[list[list[int]], int]:
        if epoch not in self._plans:
            self._plans = {
                epoch: pack_steps(
                    self.groups, self.capacity, self.micro_batches, random.Random(self.seed * 100_003 + epoch)
                )
            }
        return self._plans[epoch]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in self.plan():
            parts = split_step(step, self.micro_batches)
            for it in range(self.num_iterations):
                for part in parts:
                    yield [(i, it) for i in part]

    def __len__(self) -> int:
        return len(self.plan()) * self.micro_batches * self.num_iterations


__all__ = ["GroupBatchSampler", "pack_steps", "split_step"]
