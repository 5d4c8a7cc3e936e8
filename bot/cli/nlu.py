"""``coopbot nlu ...``: the NLU model's whole life from the command line.

``retrain``, ``models`` and ``rollback`` work on the model registry (the running
assistant loads what is deployed); ``train``, ``test`` and ``serve`` build,
evaluate and run a model by hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.context import cli_engine, cli_settings
from bot.cli.review import By, operator_name
from bot.clock import format_timestamp
from bot.nlu_model.evaluation import predict_split, predict_with_model
from bot.nlu_model.registry import ModelRecord, ModelRegistry, RegistryError, RetrainBusy
from bot.nlu_model.retrain import Retrainer, RetrainError
from bot.nlu_model.service import NLUService, ensure_nlu_service, pick_model
from bot.replies import shorten
from nlu.build import (
    NLUBuildError,
    current_model,
    fingerprint,
    train_model,
)
from nlu.evaluate import Prediction, Report, evaluate, split_by_spelling

__all__ = ["nlu_app"]

nlu_app = typer.Typer(no_args_is_help=True, help="Train, test and serve the NLU model.")


def _metrics(record: ModelRecord) -> str:
    heldout = record.metrics.get("heldout")
    if not heldout:
        return "-"
    text = f"{heldout['accuracy']:.1%} / F1 {heldout['macro_f1']:.3f}"
    reviewed = record.metrics.get("reviewed") or {}
    if reviewed.get("n"):
        text += f" / nhãn {reviewed['accuracy']:.0%} ({reviewed['n']})"
    return text


def _wait_loaded(registry: ModelRegistry, record: ModelRecord, wait: float) -> None:
    """Waits until a running assistant serves ``record`` (it stamps ``loaded_at``)."""
    if wait <= 0:
        typer.echo("Trợ lý đang chạy sẽ tự nạp mô hình này.")
        return
    typer.echo(f"Đang chờ trợ lý đang chạy nạp {record.version} (tối đa {wait:.0f} s)...")
    deadline = time.monotonic() + wait
    loaded = registry.by_id(record.id)
    while (loaded is None or loaded.loaded_at is None) and time.monotonic() < deadline:
        time.sleep(0.5)
        loaded = registry.by_id(record.id)
    if loaded is None or loaded.loaded_at is None:
        typer.echo(
            "Chưa có trợ lý nào nạp mô hình này (có thể không có `coopbot run` nào đang chạy); "
            "lần khởi động tới sẽ dùng nó."
        )
        return
    assert loaded.loaded_at is not None and loaded.deployed_at is not None
    seconds = (loaded.loaded_at - loaded.deployed_at).total_seconds()
    typer.echo(f"Trợ lý đang trả lời bằng {loaded.version} (nạp sau {seconds:.1f} s).")


Wait = Annotated[
    float,
    typer.Option(help="Seconds to wait for the running assistant to load it (0: don't wait)."),
]


# Registered before train, test and serve: `coopbot nlu --help` lists them first.
@nlu_app.command("retrain")
def nlu_retrain(
    force: Annotated[
        bool,
        typer.Option("--force", help="Retrain even if nothing changed; deploy even if worse."),
    ] = False,
    wait: Wait = 60.0,
    by: By = None,
) -> None:
    """Train on the data plus labelled questions, evaluate, deploy if not worse."""
    settings = cli_settings()
    with cli_engine() as engine:
        retrainer = Retrainer(settings, engine, progress=lambda line: typer.echo(line))
        try:
            outcome = asyncio.run(retrainer.run(operator_name(by), force=force))
        except (RetrainBusy, RetrainError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(outcome.summary())
        if outcome.status == "refused":
            typer.echo("Dùng --force để vẫn triển khai.")
            raise typer.Exit(3)
        if outcome.status == "deployed" and outcome.record is not None:
            _wait_loaded(retrainer.registry, outcome.record, wait)


@nlu_app.command("models")
def nlu_models(
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 20,
) -> None:
    """The model registry: versions, data hash, metrics, who deployed and when."""
    settings = cli_settings()
    with cli_engine() as engine:
        records = ModelRegistry(engine, settings.model_dir).latest(limit)
    if not records:
        typer.echo("Chưa có mô hình nào trong sổ đăng ký (`coopbot run` ghi mô hình đầu tiên).")
        return
    typer.echo(
        f"{'bản':<6}{'trạng thái':<13}{'dữ liệu':<14}{'tập kiểm tra / nhãn':<36}"
        f"{'triển khai':<40}tạo lúc"
    )
    for r in records:
        deployed = (
            f"{format_timestamp(r.deployed_at)} bởi {r.deployed_by}" if r.deployed_at else "-"
        )
        marker = "*" if r.status == "deployed" else " "
        typer.echo(
            f"{marker}{r.version:<5}{r.status:<13}{(r.data_hash or '-')[:12]:<14}"
            f"{_metrics(r):<36}{shorten(deployed, 39):<40}{format_timestamp(r.created_at)}"
        )
        if r.status in ("training", "refused", "failed") and r.decision:
            typer.echo(f"       {r.decision}")


@nlu_app.command("rollback")
def nlu_rollback(
    to: Annotated[
        str | None, typer.Option("--to", help="Deploy this version instead (e.g. v3).")
    ] = None,
    wait: Wait = 60.0,
    by: By = None,
) -> None:
    """Deploy the model deployed before the current one (or --to VERSION)."""
    settings = cli_settings()
    with cli_engine() as engine:
        registry = ModelRegistry(engine, settings.model_dir)
        try:
            old, new = registry.rollback(operator_name(by), to)
        except RegistryError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        was = f" thay cho {old.version}" if old is not None else ""
        typer.echo(f"Đã triển khai lại {new.version}{was}.")
        _wait_loaded(registry, new, wait)


@nlu_app.command("train")
def nlu_train(
    if_stale: Annotated[
        bool, typer.Option("--if-stale", help="Skip when a model of the current data exists.")
    ] = False,
    no_augment: Annotated[
        bool, typer.Option("--no-augment", help="Train without diacritic-free copies.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Override the DIET epochs.")] = None,
) -> None:
    """Train the NLU model from nlu/data/train (and config.yml)."""
    settings = cli_settings()
    if if_stale and not no_augment and epochs is None:
        existing = current_model(settings.model_dir, reviewed=settings.reviewed_data)
        if existing is not None:
            typer.echo(f"model is current: {existing}")
            return
    typer.echo(
        f"training NLU model {fingerprint(augment=not no_augment, reviewed=settings.reviewed_data)}"
        " ..."
    )
    try:
        result = train_model(
            settings.model_dir,
            settings.nlu_venv,
            augment=not no_augment,
            epochs=epochs,
            name=None if epochs is None and not no_augment else f"nlu-exp-{int(time.time())}",
            echo=lambda line: typer.echo(f"  {line}"),
            reviewed=settings.reviewed_data,
        )
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"trained {result.model} on {result.examples} examples in {result.seconds:.1f} s")


def _print_report(title: str, report: Report) -> None:
    typer.echo(
        f"{title:<11} n={report.count:<4} accuracy={report.accuracy:.1%}  "
        f"macro-F1={report.macro_f1:.3f}"
    )


@nlu_app.command("test")
def nlu_test(
    model: Annotated[Path | None, typer.Option(help="Model file (default: current).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    show_errors: Annotated[
        bool, typer.Option("--errors", help="List every misclassified question.")
    ] = False,
) -> None:
    """Evaluate the model on the held-out split: accuracy, macro-F1, confused pairs."""
    settings = cli_settings()

    async def run() -> list[Prediction]:
        if model is not None:
            return await predict_with_model(settings, model)
        async with ensure_nlu_service(settings) as endpoint:
            return await predict_split(endpoint)

    try:
        predictions = asyncio.run(run())
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    accented, unaccented = split_by_spelling(predictions)
    reports = {
        "all": evaluate(predictions),
        "accented": evaluate(accented),
        "unaccented": evaluate(unaccented),
    }
    if as_json:
        typer.echo(json.dumps({
            k: {"n": r.count, "accuracy": r.accuracy, "macro_f1": r.macro_f1,
                "confused": [list(c) for c in r.confused]}
            for k, r in reports.items()
        }, ensure_ascii=False))  # fmt: skip
        return
    for name, report in reports.items():
        _print_report(name, report)
    typer.echo("\nmost confused (expected -> predicted: count):")
    for expected, predicted, count in reports["all"].confused:
        typer.echo(f"  {expected} -> {predicted}: {count}")
    if show_errors:
        typer.echo("\nmisclassified (expected -> predicted, confidence):")
        for p in reports["all"].errors:
            typer.echo(f"  {p.expected} -> {p.predicted} ({p.confidence:.2f}): {p.text}")


@nlu_app.command("serve")
def nlu_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5005,
    model: Annotated[Path | None, typer.Option(help="Model file (default: current).")] = None,
) -> None:
    """Run the NLU service in the foreground (Rasa's HTTP API on 127.0.0.1)."""
    settings = cli_settings()
    if settings.nlu_token is None:
        typer.echo(
            "error: set NLU_TOKEN to the token clients must send (e.g. "
            "NLU_TOKEN=$(openssl rand -hex 32)); the service never runs without one",
            err=True,
        )
        raise typer.Exit(2)
    try:
        chosen = model or pick_model(settings.model_dir, settings.reviewed_data)
        service = NLUService(settings, chosen, port=port)
        command = service.command()
    except NLUBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    from nlu.build import PROJECT_ROOT, nlu_env

    typer.echo(f"serving {service.model.name} on {service.url}", err=True)
    os.chdir(PROJECT_ROOT)
    os.execve(command[0], command, nlu_env())
