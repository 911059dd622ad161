"""The PyTorch class of the seed MNIST state_dict, shipped with the model (modelClass mnist_mlp:MnistMLP).

Input: a batch of flattened 28x28 images, raw 0..255 floats (N, 784). Output: class
probabilities (N, 10): the trained network ends in logits, softmax is applied here so this model
and the Keras one answer in the same form and jobs can switch between them.
"""

from __future__ import annotations

import torch
from torch import nn


class MnistMLP(nn.Module):
    """Linear(784,256)-ReLU-Linear(256,128)-ReLU-Linear(128,10), parameter names fc1/fc2/out."""

    def __init__(self, hidden: int = 256, hidden2: int = 128, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, hidden2)
        self.out = nn.Linear(hidden2, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.reshape(images.shape[0], -1)
        logits = self.out(torch.relu(self.fc2(torch.relu(self.fc1(flat)))))
        return torch.softmax(logits, dim=1)
