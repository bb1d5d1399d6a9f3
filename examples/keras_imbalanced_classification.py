"""Imbalanced classification (credit card fraud detection), run with kompile on a torch module.

Source: keras-team/keras-io, examples/structured_data/imbalanced_classification.py (fchollet).
Changed: the model is a ``torch.nn.Sequential`` with the same layers (Dense 256 relu x3 with
Dropout(0.3) after the 2nd and 3rd, Dense(1, sigmoid)); the data are synthetic (scikit-learn's
``make_classification``: 30 features, about 0.5% positives) instead of the Kaggle CSV; the
checkpoint files are ``.safetensors`` (kompile's format) in a temporary directory instead of
``.keras`` files in the working directory.
Unchanged: the validation split, class weights 1/count, normalisation, the six metrics,
Adam(1e-2), binary_crossentropy, fit(batch_size=2048, epochs=30, verbose=2, class_weight).

    python examples/keras_imbalanced_classification.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch import nn

import kompile as kp


def load_features_and_targets(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic stand-in for creditcard.csv: float32 features (n, 30), uint8 targets (n, 1)."""
    x, y = make_classification(n_samples=n_samples, n_features=30, n_informative=8,
                               weights=[0.995], flip_y=0.0, class_sep=1.5, random_state=0)
    return x.astype("float32"), y.astype("uint8")[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 4096 samples")
    args = parser.parse_args()
    torch.manual_seed(0)

    features, targets = load_features_and_targets(4096 if args.quick else 40000)
    print("features.shape:", features.shape)
    print("targets.shape:", targets.shape)

    # Prepare a validation set
    num_val_samples = int(len(features) * 0.2)
    train_features = features[:-num_val_samples]
    train_targets = targets[:-num_val_samples]
    val_features = features[-num_val_samples:]
    val_targets = targets[-num_val_samples:]

    print("Number of training samples:", len(train_features))
    print("Number of validation samples:", len(val_features))

    # Analyze class imbalance in the targets
    counts = np.bincount(train_targets[:, 0])
    print(
        f"Number of positive samples in training data: {counts[1]} "
        f"({100 * float(counts[1]) / len(train_targets):.2f}% of total)"
    )

    weight_for_0 = 1.0 / counts[0]
    weight_for_1 = 1.0 / counts[1]

    # Normalize the data using training set statistics
    mean = np.mean(train_features, axis=0)
    train_features -= mean
    val_features -= mean
    std = np.std(train_features, axis=0)
    train_features /= std
    val_features /= std

    # Build a binary classification model
    module = nn.Sequential(
        nn.Linear(train_features.shape[-1], 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 1), nn.Sigmoid(),
    )
    model = kp.Model(module)

    # Train the model with `class_weight` argument
    metrics = [
        kp.metrics.FalseNegatives(name="fn"),
        kp.metrics.FalsePositives(name="fp"),
        kp.metrics.TrueNegatives(name="tn"),
        kp.metrics.TruePositives(name="tp"),
        kp.metrics.Precision(name="precision"),
        kp.metrics.Recall(name="recall"),
    ]

    model.compile(
        optimizer=kp.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )

    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "fraud_model_at_epoch_{epoch}.safetensors")
        callbacks = [kp.callbacks.ModelCheckpoint(path)]
        class_weight = {0: weight_for_0, 1: weight_for_1}

        history = model.fit(
            train_features,
            train_targets,
            batch_size=2048,
            epochs=2 if args.quick else 30,
            verbose=2,
            callbacks=callbacks,
            validation_data=(val_features, val_targets),
            class_weight=class_weight,
        )
        print("checkpoints:", sorted(os.listdir(workdir)))

    logs = {k: v[-1] for k, v in history.history.items()}
    print(f"Validation: {logs['val_tp']:.0f} frauds found, {logs['val_fn']:.0f} missed, "
          f"{logs['val_fp']:.0f} legitimate transactions flagged")
    if not args.quick and logs["val_recall"] < 0.7:
        raise SystemExit(f"validation recall {logs['val_recall']:.3f} is below 0.7")


if __name__ == "__main__":
    main()
