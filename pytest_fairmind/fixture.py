"""The ``fairmind`` fixture object: what bias tests use to record results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_fairmind.records import Record, RecordError, make_record

if TYPE_CHECKING:
    from pytest_fairmind.metrics import FairnessResult
    from pytest_fairmind.subgroup_scan import ScanResult

NO_MODEL_HELP = (
    "no model named for this record: pass model='...' to record()/assess(), mark the test with "
    "@pytest.mark.fairmind(model='...'), or set fairmind_model in your pytest ini file"
)


class Fairmind:
    """Records fairness results for the current test (the ``fairmind`` fixture).

    Records belong to the test that made them; at session end they are aggregated per model,
    gated and logged to the configured providers.
    """

    def __init__(
        self, nodeid: str, default_model: str | None, sink: list[Record], *, n_boot: int | None = None
    ) -> None:
        self.nodeid = nodeid
        #: The model used when ``model=`` is not given (marker, then ini ``fairmind_model``).
        self.default_model = default_model
        #: ``assess``'s ``n_boot`` when the call gives none (ini ``fairmind_n_boot``; 0: off).
        self.default_n_boot = n_boot
        self._sink = sink

    def __repr__(self) -> str:
        return f"<Fairmind {self.nodeid} model={self.default_model!r} records={len(self._sink)}>"

    def _model(self, model: str | None) -> str:
        __tracebackhide__ = True
        chosen = model if model is not None else self.default_model
        if chosen is None:
            raise RecordError(NO_MODEL_HELP)
        return chosen

    def record(
        self,
        metrics: Mapping[str, Any],
        *,
        model: str | None = None,
        scope: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a mapping of results for a model.

        Nested mappings are flattened with ``.``; numbers become metrics; numeric sequences become
        ``<key>.mean/.min/.max/.std/.count``; str, bool and None become params. ``scope`` prefixes
        every metric and param key with ``<scope>/``. Bad keys raise ``ValueError`` naming them.
        """
        __tracebackhide__ = True
        self._sink.append(
            make_record(metrics, model=self._model(model), scope=scope, params=params, tags=tags)
        )

    def assess(
        self,
        y_true: Any,
        y_pred: Any = None,
        *,
        sensitive_features: Any,
        y_score: Any = None,
        task: str | None = None,
        metrics: Mapping[str, Callable[..., Any]] | None = None,
        threshold: float | None = None,
        pos_label: Any = 1,
        sample_weight: Any = None,
        model: str | None = None,
        scope: str | None = None,
        n_boot: int | None = None,
        ci: float = 0.95,
        random_state: int | None = 0,
        min_group_size: int | None = None,
        class_names: Mapping[Any, str] | None = None,
        per_class: bool = False,
    ) -> FairnessResult:
        """Compute the fairness metrics (see :func:`pytest_fairmind.assess`), record them and their
        per-group table under ``<scope>/``, and return the :class:`~pytest_fairmind.FairnessResult`.
        ``n_boot`` defaults to ini ``fairmind_n_boot``; ``n_boot=0`` turns the bootstrap off."""
        __tracebackhide__ = True
        from pytest_fairmind.metrics import assess

        name = self._model(model)
        if n_boot is None:
            n_boot = self.default_n_boot
        result = assess(
            y_true,
            y_pred,
            sensitive_features=sensitive_features,
            y_score=y_score,
            task=task,
            metrics=metrics,
            threshold=threshold,
            pos_label=pos_label,
            sample_weight=sample_weight,
            scope=scope,
            n_boot=None if n_boot == 0 and not isinstance(n_boot, bool) else n_boot,
            ci=ci,
            random_state=random_state,
            min_group_size=min_group_size,
            class_names=class_names,
            per_class=per_class,
        )
        self._sink.append(
            make_record(
                result.metrics(),
                model=name,
                scope=result.scope,
                groups={result.scope: result.by_group},
                evidence={result.scope: result.evidence} if result.evidence else None,
            )
        )
        return result

    def scan(
        self,
        y_true: Any,
        y_pred: Any,
        *,
        features: Any,
        metric: str = "selection_rate",
        max_order: int = 2,
        min_support: int = 30,
        alpha: float = 0.05,
        top: int | None = 20,
        model: str | None = None,
        scope: str = "scan",
        sample_weight: Any = None,
        pos_label: Any = 1,
        max_subgroups: int = 100_000,
        max_levels: int = 100,
    ) -> ScanResult:
        """Scan every subgroup of up to ``max_order`` conditions for the one treated worst (see
        :func:`pytest_fairmind.scan`), record its ``<scope>/<metric>.*`` keys and its table, and
        return the :class:`~pytest_fairmind.ScanResult`."""
        __tracebackhide__ = True
        from pytest_fairmind.subgroup_scan import scan

        name = self._model(model)
        result = scan(
            y_true,
            y_pred,
            features=features,
            metric=metric,
            max_order=max_order,
            min_support=min_support,
            alpha=alpha,
            top=top,
            scope=scope,
            sample_weight=sample_weight,
            pos_label=pos_label,
            max_subgroups=max_subgroups,
            max_levels=max_levels,
        )
        self._sink.append(
            make_record(result.metrics(), model=name, scans={result.scope: result.report_entry()})
        )
        return result

    @property
    def records(self) -> list[Record]:
        """What this test recorded so far (plain dicts, as they travel to the aggregating process)."""
        return list(self._sink)
