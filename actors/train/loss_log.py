"""The loss log (`loss_log.csv`: step, loss, learning_rate) and its plot (`loss_curve.png`)."""
from __future__ import annotations

import csv
from pathlib import Path

HEADER = ("step", "loss", "learning_rate")


class LossLog:
    """Append-only CSV of per-step losses. A resumed run first drops the rows after its checkpoint."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write([])

    def truncate_after(self, step: int) -> None:
        """Keep rows with step ≤ `step` (the rest belong to a run that stopped before checkpointing them)."""
        self._write([row for row in self.read() if row[0] <= step])

    def append(self, step: int, loss: float, learning_rate: float) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(HEADER)
            writer.writerow((step, repr(float(loss)), repr(float(learning_rate))))

    def read(self) -> list[tuple[int, float, float]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as handle:
            return [(int(r["step"]), float(r["loss"]), float(r["learning_rate"])) for r in csv.DictReader(handle)]

    def _write(self, rows: list[tuple[int, float, float]]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows((s, repr(l), repr(r)) for s, l, r in rows)


def plot_loss(rows: list[tuple[int, float, float]], png_path: str | Path, title: str = "LoRA training loss") -> Path:
    """Loss per step plus a moving average, written as a PNG with matplotlib's Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r[0] for r in rows]
    losses = [r[1] for r in rows]
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(steps, losses, linewidth=0.8, alpha=0.45, label="loss")
    window = max(1, len(losses) // 20)
    if window > 1:
        smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
                  for i in range(len(losses))]
        axes.plot(steps, smooth, linewidth=1.6, label=f"moving average ({window} steps)")
    axes.set_xlabel("step")
    axes.set_ylabel("noise-prediction MSE")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right")
    figure.tight_layout()
    path = Path(png_path)
    figure.savefig(path)
    return path
