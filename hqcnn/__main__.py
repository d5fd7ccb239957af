"""Command line: python -m hqcnn train | evaluate | predict | datasets | export-example | bench | experiment.

Every HQCNNError ends the program with its plain message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from hqcnn import determinism
from hqcnn.cli_options import add_config_arguments, config_from_args
from hqcnn.config import SOURCE_SIZES, DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.errors import HQCNNError
from hqcnn.experiments_cli import add_parser as add_experiment_parser

# The config fields that `train` offers as flags (the names are the fields', the flags theirs).
DATA_FLAGS = ("dataset", "source_size", "image_size", "grayscale", "normalize", "train_per_class", "noise_std")
MODEL_FLAGS = ("kind", "n_qubits", "depth", "n_features", "entangler", "encoding", "readout")
# --seed is TrainConfig's flag; DataConfig's seed reads it too (same dest), so one seed sets both.
TRAIN_FLAGS = ("epochs", "lr", "batch_size", "average_last", "seed", "class_weights", "augment", "device", "threads")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p.add_argument_group("data"), DataConfig, DATA_FLAGS)
    add_config_arguments(p.add_argument_group("model"), ModelConfig, MODEL_FLAGS)
    train = p.add_argument_group(
        "training", "Unset options take TrainConfig's defaults, or with --recipe the recipe's values."
    )
    train.add_argument(
        "--recipe",
        action="store_true",
        help="the recommended recipe for the dataset's size (hqcnn/recipes.py): batch, epochs, learning rate, "
        "weight averaging; the README's results use it",
    )
    add_config_arguments(train, TrainConfig, TRAIN_FLAGS)


def _dataset_key(dataset: str) -> str:
    """A folder given on the command line becomes an absolute path, so the saved model still finds it."""
    from hqcnn.data import DATASETS
    from hqcnn.folder_data import is_folder_key, is_upload_key

    if dataset in DATASETS or is_upload_key(dataset) or not is_folder_key(dataset):
        return dataset
    return str(Path(dataset).expanduser().resolve())


def _train_config(args: argparse.Namespace, data: DataConfig) -> TrainConfig:
    """TrainConfig defaults, or the recipe for the dataset's size, with the options given on top."""
    if args.recipe:
        from hqcnn.data import get_info
        from hqcnn.recipes import recommended_train_config

        base = recommended_train_config(get_info(data.dataset).training_images(data.train_per_class))
    else:
        base = TrainConfig()
    return config_from_args(TrainConfig, args, base=base, names=TRAIN_FLAGS)


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig described by parsed `train` options (validated)."""
    data = config_from_args(DataConfig, args, names=(*DATA_FLAGS, "seed"))
    data = dataclasses.replace(data, dataset=_dataset_key(data.dataset))
    model = config_from_args(ModelConfig, args, names=MODEL_FLAGS)  # features: two per qubit unless given
    return RunConfig(data=data, model=model, train=_train_config(args, data))


def _print_metrics(test: dict[str, Any], params: dict[str, int] | None = None) -> None:
    auc = "n/a" if test.get("auc") is None else f"{test['auc']:.3f}"
    print(f"test accuracy {test['accuracy']:.3f}  (majority-class baseline {test['majority_accuracy']:.3f})")
    print(f"test ROC-AUC  {auc}")
    for key in ("precision", "recall", "specificity", "f1"):
        print(f"test {key:<12}{test[key]:.3f}")
    if params:
        print("trainable parameters: " + ", ".join(f"{k} {v}" for k, v in params.items()))


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model and save it as a run folder."""
    from tqdm import tqdm

    from hqcnn import checkpoint
    from hqcnn.data import prepare
    from hqcnn.datasets_base import ModelMeta
    from hqcnn.train import Callback, run

    config = run_config_from_args(args)
    # Before any data is read or any epoch run: a bad --out costs a second, not a whole training.
    checkpoint.check_out_folder(args.out, args.overwrite)
    # The thread count is part of the model: the contract's (1 when pinned) unless --threads says otherwise.
    determinism.apply_torch(config.train.threads or determinism.default_threads())
    print(determinism.describe(determinism.record()))
    data = prepare(config.data)

    class TqdmCallback(Callback):
        def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
            self.bar = tqdm(total=total_steps, unit="batch", desc="training", disable=args.quiet)

        def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}")

        def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
            auc = metrics["val_auc"]
            self.bar.write(
                f"epoch {epoch}: loss {metrics['train_loss']:.3f}  val acc {metrics['val_accuracy']:.3f}"
                f"  val AUC {'n/a' if auc is None else f'{auc:.3f}'}  ({metrics['seconds']:.1f} s)"
            )

    callback = TqdmCallback()
    outcome = run(config, data=data, callback=callback, posthoc=True)
    callback.bar.close()
    metrics = outcome.metrics_json()
    meta = ModelMeta.from_data(data)
    from hqcnn.model_card import FILE_NAME as CARD_FILE

    card = _model_card(outcome, meta)
    out = checkpoint.save(
        args.out, outcome.result.model, config, meta, metrics, args.overwrite, outcome.posthoc, {CARD_FILE: card}
    )
    print(f"kept {outcome.result.kept}; trained in {outcome.seconds:.1f} s; saved to {out}")
    _print_metrics(outcome.test, metrics["params"])
    return 0


def _model_card(outcome: Any, meta: Any) -> bytes:
    """The model card of a finished run, with its operating point on the test split."""
    from hqcnn.model_card import model_card
    from hqcnn.posthoc import answer

    data = outcome.data
    probs = answer(outcome.result.model, outcome.posthoc, data.x_test).probabilities
    labels = data.y_test.numpy().reshape(-1)
    card = model_card(outcome.config, meta, outcome.metrics_json(), outcome.posthoc, data.info.title, probs, labels)
    return card.encode()


# What a terminal would act on: ANSI escape sequences (CSI such as "clear screen", OSC such as
# "copy to the clipboard", terminated by BEL or ST), then any other C0/C1 control character or DEL.
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """`text` safe to print to a terminal: escape sequences removed, other control characters as spaces.

    Class names come from a model file, which may come from anyone."""
    return _CONTROL.sub(" ", _TERMINAL_ESCAPE.sub("", str(text)))


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify image files (PNG, JPEG or DICOM) with a saved run: calibrated probabilities, the
    decision at the saved threshold, and a warning for images unlike the training data."""
    from hqcnn import checkpoint
    from hqcnn.errors import ImageError
    from hqcnn.imageio import MAX_UPLOAD_BYTES, image_to_model_input
    from hqcnn.posthoc import answer

    saved = checkpoint.load(args.run)
    names, posthoc = saved.meta.label_names, saved.posthoc
    rows, failed = [], 0
    for path in args.images:
        try:
            if path.stat().st_size > MAX_UPLOAD_BYTES:
                raise ImageError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
            x = image_to_model_input(path.read_bytes(), saved.meta, saved.config.data)
        except (HQCNNError, OSError) as err:
            failed += 1
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            print(plain(f"{path}: cannot be read: {reason}"), file=sys.stderr)
            continue
        shown = answer(saved.model, posthoc, x)
        probs, called = shown.probabilities[0], int(shown.predicted[0])
        rows.append(
            {
                "image": str(path),
                "predicted": names[called],
                "calibrated_probabilities": dict(zip(names, map(float, probs), strict=True)),
                "unusual": None if shown.unusual is None else bool(shown.unusual[0]),
                "unusual_score": None if shown.ood_score is None else float(shown.ood_score[0]),
            }
        )
    if args.json:
        print(json.dumps({"temperature": posthoc.temperature, "threshold": posthoc.threshold, "images": rows}, indent=2))
    else:
        rule = (
            f"called {names[posthoc.positive]} when its probability is at least {posthoc.threshold:.2f}"
            if posthoc.positive is not None and posthoc.threshold is not None
            else "the most probable class is called"
        )
        calibrated = "uncalibrated" if posthoc.temperature == 1.0 else f"calibrated, T = {posthoc.temperature:.2f}"
        print(
            plain(f"{saved.config.model.kind} model on {saved.meta.dataset} ({calibrated}; {rule}).")
            + " Research and teaching only."
        )
        for row in rows:
            if row["unusual"]:
                print(f"{plain(row['image'])}: WARNING: this image does not look like the training data "
                      f"(score {row['unusual_score']:.1f} > {posthoc.ood.threshold:.1f}); the prediction may mean nothing.")  # fmt: skip
            chances = ", ".join(f"{name} {p:.2f}" for name, p in row["calibrated_probabilities"].items())
            print(plain(f"{row['image']}: {row['predicted']} ({chances})"))
    return 2 if failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Re-evaluate a saved run on its dataset's test split."""
    from hqcnn import checkpoint
    from hqcnn.data import prepare_split
    from hqcnn.datasets_base import positive_class
    from hqcnn.model import parameter_counts
    from hqcnn.train import evaluate

    saved = checkpoint.load(args.run)
    # Normalised with the statistics stored with the model, exactly as in training.
    x_test, y_test = prepare_split(saved.config.data, "test", saved.meta.mean, saved.meta.std)
    test = evaluate(saved.model, x_test, y_test, positive_class(saved.meta.dataset, saved.meta.n_classes))
    if args.json:
        print(json.dumps({"test": test, "params": parameter_counts(saved.model).to_dict()}, indent=2))
    else:
        print(f"run {args.run}: {saved.config.model.kind} model on {saved.meta.dataset}")
        _print_metrics(test, parameter_counts(saved.model).to_dict())
    return 0


def _bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:,.1f} MB"


def _print_cache() -> None:
    """What the cache folder holds: downloads, uploads (against their limit), folder caches."""
    import time

    from hqcnn import cache
    from hqcnn.folder_data import upload_store

    held = cache.report()
    print(f"\nCache folder {held.folder} (set HQCNN_DATA_DIR to move it):")
    print("  downloaded MedMNIST files:" + ("" if held.downloads else " none"))
    for file in held.downloads:
        print(f"    {file.name:<28}{_bytes(file.bytes):>12}")
    print("  uploaded datasets (least recently used first):" + ("" if held.uploads else " none"))
    for up in held.uploads:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(up.last_used))
        print(f"    {up.key}  {up.title[:30]:<30}{_bytes(up.bytes):>12}  last used {used}")
    print(
        f"  uploads and their caches: {_bytes(held.upload_bytes)} of {_bytes(held.upload_limit)} "
        f"(set {upload_store.ENV_LIMIT}; the least recently used are removed beyond it)"
    )
    if held.folder_cache_files:
        print(f"  caches of your own folders: {held.folder_cache_files} file(s), {_bytes(held.folder_cache_bytes)}")


def _clear_cache() -> int:
    from hqcnn import cache

    removed = cache.clear()
    for item in removed:
        print(f"removed {item.what} ({_bytes(item.bytes)})")
    freed = sum(item.bytes for item in removed)
    print(f"{len(removed)} item(s) removed, {_bytes(freed)} freed." if removed else "The cache was already empty.")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """List every dataset and whether it is bundled, cached or downloadable, and what the cache holds."""
    from hqcnn.data import DATASETS, dataset_status

    if args.clear_cache:
        return _clear_cache()

    print(f"{'name':<16}{'classes':>8}{'channels':>10}{'train':>8}  {'task':<20}status at 28 px (larger: 64/128/224)")
    for key, info in DATASETS.items():
        status = dataset_status(key, 28)
        larger = "/".join(dataset_status(key, s)[0] for s in SOURCE_SIZES[1:])  # b/c/d
        print(
            f"{key:<16}{info.n_classes:>8}{info.n_channels:>10}{info.n_samples['train']:>8}  "
            f"{info.task:<20}{status} ({larger})"
        )
    print("\nbundled: shipped with the project; cached: downloaded before; downloadable: fetched on first use.")
    _print_cache()
    return 0


def cmd_export_example(args: argparse.Namespace) -> int:
    """Write a few images of a MedMNIST set as PNG class folders: a small dataset of 'your own images'."""
    from hqcnn.example_folder import export_example

    out = export_example(args.dataset, args.per_class, args.out, seed=args.seed)
    print(f"wrote {args.per_class} images per class to {out}; train on it with: python -m hqcnn train --dataset {out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Speed and memory beside the PennyLane baseline, measured in the same run."""
    import platform

    import torch

    from hqcnn.bench import epoch_benchmark, format_rows, peak_memory_mb, quantum_layer_benchmark

    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 20
    report: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
    }
    say = (lambda *_: None) if args.json else print
    say(f"torch {torch.__version__}, {args.threads} thread(s); medians of {repeats} repeats, interleaved")
    say("\nQuantum layer, forward + backward, batch 128 (PennyLane default.qubit backprop vs the fast path):")
    report["quantum_layer"] = quantum_layer_benchmark(repeats=repeats, lightning=not args.quick)
    say(format_rows(report["quantum_layer"]))
    say("\nOne training epoch on PneumoniaMNIST 28×28 (4708 images, batch 128), seconds:")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report["epoch"] = [epoch_benchmark(repeats=2 if args.quick else 3, device=device) for device in devices]
    for row in report["epoch"]:
        say(
            f"  {row['device']}: hybrid (fast) {row['hybrid_fast_s']:.2f} · hybrid (PennyLane) "
            f"{row['hybrid_pennylane_s']:.2f} · classical twin {row['classical_s']:.2f}  →  hybrid/classical "
            f"{row['fast_vs_classical']:.2f}× (PennyLane path {row['pennylane_vs_classical']:.2f}×)"
        )
    report["memory"] = peak_memory_mb(epochs=2 if args.quick else 10, threads=args.threads)
    mem = report["memory"]
    say(
        f"\nDefault training run ({mem['epochs']} epochs, fresh process): peak memory {mem['peak_rss_mb']:.0f} MB, "
        f"{mem['seconds']:.1f} s, test accuracy {mem['test_accuracy']:.3f}, AUC {mem['test_auc']:.3f}"
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m hqcnn`."""
    parser = argparse.ArgumentParser(prog="python -m hqcnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train a model and save it to a run folder")
    _add_run_options(p_train)
    p_train.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        help="run folder to write: a new or empty folder (checked before training starts)",
    )
    p_train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run folder already at --out (only once the new one is saved)",
    )
    p_train.add_argument("--quiet", action="store_true", help="no progress bar")
    p_train.set_defaults(func=cmd_train)

    p_eval = sub.add_parser("evaluate", help="print the test metrics of a saved run")
    p_eval.add_argument("--run", type=Path, required=True, help="run folder written by 'train'")
    p_eval.add_argument("--json", action="store_true")
    p_eval.set_defaults(func=cmd_evaluate)

    p_pred = sub.add_parser("predict", help="classify image files (PNG, JPEG or DICOM) with a saved run")
    p_pred.add_argument("--run", type=Path, required=True, help="run folder written by 'train'")
    p_pred.add_argument("images", type=Path, nargs="+", help="image files")
    p_pred.add_argument("--json", action="store_true")
    p_pred.set_defaults(func=cmd_predict)

    p_data = sub.add_parser("datasets", help="list datasets: bundled, cached or downloadable; what the cache holds")
    p_data.add_argument(
        "--clear-cache",
        action="store_true",
        help="delete uploaded datasets, folder caches and downloaded MedMNIST files from the cache folder "
        "(never the bundled files or your own folders)",
    )
    p_data.set_defaults(func=cmd_datasets)

    p_bench = sub.add_parser("bench", help="speed and memory beside the PennyLane baseline")
    p_bench.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p_bench.add_argument("--quick", action="store_true", help="fewer repeats, no lightning.qubit (about a minute)")
    p_bench.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    p_bench.set_defaults(func=cmd_bench)

    p_export = sub.add_parser("export-example", help="write MedMNIST images as PNG class folders (an example folder)")
    p_export.add_argument("--dataset", default="breastmnist", help="MedMNIST name (the bundled ones work offline)")
    p_export.add_argument("--per-class", type=int, default=20, help="images per class")
    p_export.add_argument("--out", type=Path, required=True, help="new folder to write")
    p_export.add_argument("--seed", type=int, default=0, help="which images are picked")
    p_export.set_defaults(func=cmd_export_example)
    add_experiment_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the exact command, for a results set's provenance
    try:
        return args.func(args)
    except HQCNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
