"""Timeseries anomaly detection with a convolutional autoencoder, run with kompile on Flax NNX.

Source: keras-team/keras-io, examples/timeseries/timeseries_anomaly_detection.py (pavithrasv).
Changed: the model is a Flax NNX module with the same layers (Conv1D 32 and 16, kernel 7,
stride 2, "same", relu, Dropout 0.2 after the first; Conv1DTranspose 16 and 32 back up, a
Dropout 0.2 between them, and a last Conv1DTranspose to 1 feature); the two NAB series
(``art_daily_small_noise.csv`` and ``art_daily_jumpsup.csv``) are synthesised with the same
layout (a value every 5 minutes for 14 days, a daily plateau with small noise; the test series
jumps up for part of one day) instead of downloaded; plots are saved to files (``--plots``)
instead of shown.
Unchanged: the pandas normalisation, create_sequences(TIME_STEPS=288),
compile(Adam(learning_rate=0.001), "mse"), fit(x_train, x_train, epochs=50, batch_size=128,
validation_split=0.1, EarlyStopping(monitor="val_loss", patience=5, mode="min")), the MAE
threshold from predict on the training sequences, and the anomaly search on the test series.

    python examples/keras_timeseries_anomaly_detection.py [--quick] [--plots]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from flax import nnx

import kompile as kp

TIME_STEPS = 288


SURGE_DAY = 10  # 0-based: the test series jumps up on 2014-04-11


def nab_like_series(jump: bool, seed: int, days: int = 14) -> pd.DataFrame:
    """``days`` days at 5-minute steps: about 20 at night, a plateau near 80 by day, noise of
    about 1.5; with ``jump`` the plateau of day ``SURGE_DAY`` (or the last but two of a
    shorter series) rises to about 160 for six hours."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2014-04-01", periods=288 * days, freq="5min", name="timestamp")
    minute = (np.arange(len(index)) % 288) * 5
    day = np.arange(len(index)) // 288
    value = np.where((minute >= 9 * 60) & (minute < 18 * 60), 80.0, 20.0)
    value += rng.normal(0, 1.5, len(index))
    if jump:
        surge = (day == min(SURGE_DAY, days - 3)) & (minute >= 12 * 60) & (minute < 18 * 60)
        value[surge] += 80.0
    return pd.DataFrame({"value": value}, index=index)


# Generated training sequences for use in the model.
def create_sequences(values, time_steps=TIME_STEPS):
    output = []
    for i in range(len(values) - time_steps + 1):
        output.append(values[i : (i + time_steps)])
    return np.stack(output)


class Autoencoder(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, (7,), strides=2, padding="SAME", rngs=rngs)
        self.drop1 = nnx.Dropout(0.2, rngs=rngs)
        self.conv2 = nnx.Conv(32, 16, (7,), strides=2, padding="SAME", rngs=rngs)
        self.up1 = nnx.ConvTranspose(16, 16, (7,), strides=2, padding="SAME", rngs=rngs)
        self.drop2 = nnx.Dropout(0.2, rngs=rngs)
        self.up2 = nnx.ConvTranspose(16, 32, (7,), strides=2, padding="SAME", rngs=rngs)
        self.out = nnx.ConvTranspose(32, 1, kernel_size=(7,), padding="SAME", rngs=rngs)

    def __call__(self, x):
        x = self.drop1(nnx.relu(self.conv1(x)))
        x = nnx.relu(self.conv2(x))
        x = self.drop2(nnx.relu(self.up1(x)))
        x = nnx.relu(self.up2(x))
        return self.out(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 3 days of data")
    parser.add_argument("--plots", action="store_true", help="save the plots as PNG files")
    args = parser.parse_args()

    days = 3 if args.quick else 14
    df_small_noise = nab_like_series(jump=False, seed=0, days=days)
    df_daily_jumpsup = nab_like_series(jump=True, seed=1, days=days)
    print(df_small_noise.head())
    print(df_daily_jumpsup.head())

    # Normalize and save the mean and std we get,
    # for normalizing test data.
    training_mean = df_small_noise.mean()
    training_std = df_small_noise.std()
    df_training_value = (df_small_noise - training_mean) / training_std
    print("Number of training samples:", len(df_training_value))

    x_train = create_sequences(df_training_value.values)
    print("Training input shape: ", x_train.shape)

    model = kp.Model(Autoencoder(nnx.Rngs(0)))
    model.compile(optimizer=kp.optimizers.Adam(learning_rate=0.001), loss="mse")

    history = model.fit(
        x_train,
        x_train,
        epochs=2 if args.quick else 50,
        batch_size=128,
        validation_split=0.1,
        callbacks=[
            kp.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")
        ],
        verbose=2,
    )
    if args.plots:
        history.plot("anomaly_training_curves.png")

    # Get train MAE loss.
    x_train_pred = model.predict(x_train, verbose=0)
    train_mae_loss = np.mean(np.abs(x_train_pred - x_train), axis=1)

    # Get reconstruction loss threshold.
    threshold = np.max(train_mae_loss)
    print("Reconstruction error threshold: ", threshold)

    df_test_value = (df_daily_jumpsup - training_mean) / training_std

    # Create sequences from test values.
    x_test = create_sequences(df_test_value.values)
    print("Test input shape: ", x_test.shape)

    # Get test MAE loss.
    x_test_pred = model.predict(x_test, verbose=0)
    test_mae_loss = np.mean(np.abs(x_test_pred - x_test), axis=1)
    test_mae_loss = test_mae_loss.reshape(-1)

    # Detect all the samples which are anomalies.
    anomalies = test_mae_loss > threshold
    print("Number of anomaly samples: ", np.sum(anomalies))
    print("Indices of anomaly samples: ", np.where(anomalies))

    # data i is an anomaly if samples [(i - timesteps + 1) to (i)] are anomalies
    anomalous_data_indices = []
    for data_idx in range(TIME_STEPS - 1, len(df_test_value) - TIME_STEPS + 1):
        if np.all(anomalies[data_idx - TIME_STEPS + 1 : data_idx]):
            anomalous_data_indices.append(data_idx)

    df_subset = df_daily_jumpsup.iloc[anomalous_data_indices]
    if args.plots:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        df_daily_jumpsup.plot(legend=False, ax=ax)
        df_subset.plot(legend=False, ax=ax, color="r")
        fig.savefig("anomalies.png")
    print("Anomalous data points:", len(anomalous_data_indices))
    if not args.quick:  # every anomalous sequence overlaps the surge, and some exist
        surge_start = SURGE_DAY * 288 + 12 * 12
        overlapping = np.arange(len(anomalies)) > surge_start - TIME_STEPS
        if not anomalies.any() or (anomalies & ~overlapping).any():
            raise SystemExit("the anomalies were not found where the surge is")


if __name__ == "__main__":
    main()
