"""Several networks of one shape, trained with different seeds, read as one: their probabilities averaged."""

from collections.abc import Iterable

import torch
from torch import nn


class Ensemble(nn.Module):
    """`forward` gives the log of the members' mean probability, so a softmax over it is the ensemble's."""

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([torch.softmax(m(*inputs), dim=-1) for m in self.members]).mean(0)
        return probabilities.clamp_min(1e-12).log()
