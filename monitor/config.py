"""Settings: one frozen object, built once, passed down.

Sources, later wins: defaults < YAML file (``--config`` or ``STAGEWATCH_CONFIG``) < environment
(``STAGEWATCH_*``, nested with ``__``, e.g. ``STAGEWATCH_KAFKA__BOOTSTRAP_SERVERS``).
Zero configuration works: every workflow, stage and segment is discovered from the data.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

MIN_SECRET_LENGTH = 16  # an empty or short ingest token must never pass for authentication


class _Upgradable:
    """Settings pickled by an earlier version (in engine snapshots, so in every changelog) still load: a
    field the pickle lacks takes the value that keeps that version's behaviour (``BEFORE``), else its
    default. Without this every new setting would break the restore of every old snapshot."""

    BEFORE: ClassVar[dict[str, Any]] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fields = state.get("__dict__", {})
        known = type(self).model_fields  # type: ignore[attr-defined]
        missing = {
            name: self.BEFORE[name] if name in self.BEFORE else info.get_default(call_default_factory=True)
            for name, info in known.items()
            if name not in fields
        }
        if missing:
            state = {**state, "__dict__": {**fields, **missing}}
        super().__setstate__(state)  # type: ignore[misc]


class _Frozen(_Upgradable, BaseModel):
    # hide_input_in_errors: a rejected secret is never echoed into an error message or a log
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class CalendarConfig(_Frozen):
    """How durations are measured. ``auto`` learns whether the workflow has off-hours."""

    mode: Literal["auto", "wall", "business"] = "auto"
    timezone: str = "UTC"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start_hour: float = 9.0
    end_hour: float = 17.0
    holidays: tuple[date, ...] = ()
    # public holidays taken off too (a day the source is then seen working on is taken back): "auto" for
    # those of the country of the zone set above (Europe/Berlin: Germany; none when no zone is set), a
    # country ("US") or a country and one of its regions ("DE-BY"), or "none"
    public_holidays: str = "auto"
    BEFORE: ClassVar[dict[str, Any]] = {"public_holidays": "none"}  # settings pickled before it took none

    @property
    def zone_given(self) -> bool:
        """The zone was set in the settings; when not, the engine follows the zone the timestamps'
        UTC offsets, or the daylight-saving rule of the source's working day, point to
        (``detectors.calendar.ZoneFinder``), UTC when neither does."""
        return "timezone" in self.model_fields_set

    @field_validator("timezone")
    @classmethod
    def _tz_exists(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception as exc:  # noqa: BLE001 - zoneinfo raises several types
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("public_holidays")
    @classmethod
    def _holidays_known(cls, v: str) -> str:
        from detectors.public_holidays import check_spec

        return check_spec(v)

    @property
    def public_spec(self) -> str | None:
        """Whose public holidays the workflow takes off (``detectors.public_holidays.holiday_spec``)."""
        from detectors.public_holidays import holiday_spec

        return holiday_spec(self.public_holidays, self.timezone if self.zone_given else None)

    @model_validator(mode="after")
    def _hours(self) -> CalendarConfig:
        if not (0 <= self.start_hour < self.end_hour <= 24):
            raise ValueError("calendar: need 0 <= start_hour < end_hour <= 24")
        if not self.workdays or any(d < 0 or d > 6 for d in self.workdays):
            raise ValueError("calendar: workdays are 0 (Monday) .. 6 (Sunday), at least one")
        return self


class StageConfig(_Frozen):
    sensitivity: float | None = Field(None, gt=0, le=10, description="higher pages sooner")
    min_threshold_seconds: float | None = Field(None, ge=0)
    max_threshold_seconds: float | None = Field(None, gt=0)
    mute: bool = False
    severity: Literal["page", "ticket", "info"] | None = None
    terminal: bool | None = None

    @model_validator(mode="after")
    def _bounds_in_order(self) -> StageConfig:
        lo, hi = self.min_threshold_seconds, self.max_threshold_seconds
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_threshold_seconds ({lo:g}) is above max_threshold_seconds ({hi:g})")
        return self


class WorkflowConfig(_Frozen):
    terminal_stages: tuple[str, ...] = ()
    segment_by: tuple[str, ...] | None = None  # None: the attribute "segment" when present
    calendar: CalendarConfig = CalendarConfig()
    stages: dict[str, StageConfig] = {}
    severity: Literal["page", "ticket", "info"] = "page"
    mute: bool = False


class EngineConfig(_Frozen):
    warmup: int = Field(30, ge=3, description="completed durations before a (stage, segment) may page")
    sensitivity: float = Field(
        0.85, gt=0, le=10, description="higher pages sooner; 0.85 keeps false pages at 2-5 per 1000 items"
    )
    allowed_lateness_seconds: float = Field(300.0, ge=0)
    max_future_seconds: float = Field(86400.0, gt=0, description="events further ahead of the clock are rejected")
    max_workflows: int = Field(50, ge=1)
    max_stages_per_workflow: int = Field(50, ge=1)
    max_segments_per_stage: int = Field(20, ge=1)
    max_open_items: int = Field(5_000_000, ge=1)
    item_idle_days: float = Field(
        180.0, ge=0, description="an open item with no event for this long is taken as finished and no longer "
        "tracked (its alerts resolve); 0 keeps items forever. Real logs end many cases at stages that are "
        "also passed mid-case, so without it open items grow without bound"
    )
    terminal_learn_min_items: int = Field(50, ge=5)
    silence_enabled: bool = True
    silence_min_seconds: float = Field(1800.0, ge=0, description="no source is called silent before this long")
    drift_enabled: bool = True
    backlog_enabled: bool = True
    slow_stage_enabled: bool = True
    feedback_step: float = Field(1.2, gt=1, le=3, description="each 'false alert' raises the limit by this factor")
    feedback_max_factor: float = Field(2.0, ge=1, le=10, description="feedback never raises a limit past this")
    recently_closed: int = Field(200_000, ge=0, description="closed items remembered to ignore their duplicates")


class KafkaConfig(_Frozen):
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(None, min_length=1)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None


class TopicsConfig(_Frozen):
    events: tuple[str, ...] = ("stagewatch.events",)
    dlq: str = "stagewatch.events.dlq"
    alerts: str = "stagewatch.alerts"
    feedback: str = "stagewatch.feedback"
    partitions: int = Field(1, ge=1, description="one engine per partition: raise it to scale out workers")
    replication_factor: int = Field(1, ge=1)


class WorkerConfig(_Frozen):
    app_id: str = "stagewatch"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    store: Literal["memory", "rocksdb"] = "memory"
    data_dir: Path = Path("run/worker")
    tick_interval_seconds: float = Field(5.0, gt=0)
    checkpoint_interval_seconds: float = Field(5.0, gt=0, description="changed open items to the changelog")
    learned_checkpoint_seconds: float = Field(
        5.0, gt=0, description="changed items + learned state + covered offsets; events since are replayed"
    )
    session_timeout_seconds: float = Field(
        30.0, ge=6, le=300, description="Kafka group session: a crashed worker's partitions move after this long"
    )
    clock: Literal["wall", "event"] = "wall"
    ingest_token: SecretStr | None = Field(
        None, min_length=MIN_SECRET_LENGTH, description="bearer token of POST /events (e.g. openssl rand -hex 16)"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024)


class AlertmanagerConfig(_Frozen):
    urls: tuple[str, ...] = ()
    resend_interval_seconds: float = Field(60.0, gt=0)
    resolved_resend_seconds: float = Field(900.0, ge=0, description="keep re-sending resolved alerts this long")
    buffer_size: int = Field(10_000, ge=1)
    timeout_seconds: float = Field(5.0, gt=0)
    item_url_template: str | None = None  # e.g. "http://worker:6066/items/{entity_id}"


class Settings(_Upgradable, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STAGEWATCH_", env_nested_delimiter="__", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    engine: EngineConfig = EngineConfig()
    workflows: dict[str, WorkflowConfig] = {}
    kafka: KafkaConfig = KafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    worker: WorkerConfig = WorkerConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment beats the file (passed as init kwargs), like every twelve-factor tool
        return env_settings, init_settings, file_secret_settings

    def workflow(self, name: str) -> WorkflowConfig:
        """A workflow's settings; one not listed gets those listed as ``"*"``, if any."""
        return self.workflows.get(name) or self.workflows.get("*") or _DEFAULT_WORKFLOW

    def in_zone(self, zone: str) -> Settings:
        """These settings with ``zone`` as the time zone of the workflows not listed (unless ``"*"`` is)."""
        if "*" in self.workflows:
            return self
        default = WorkflowConfig(calendar=CalendarConfig(timezone=zone))
        return self.model_copy(update={"workflows": {**self.workflows, "*": default}})

    def segment_keys(self) -> tuple[str, ...]:
        """Every attribute a workflow's ``segment_by`` names (``segment`` when one names none): what a
        reader keeps however many other columns a log has."""
        keys = [k for wf in self.workflows.values() for k in (wf.segment_by or ())]
        return tuple(dict.fromkeys(("segment", *keys)))

    def stage(self, workflow: str, stage: str) -> StageConfig:
        return self.workflow(workflow).stages.get(stage) or _DEFAULT_STAGE


_DEFAULT_WORKFLOW = WorkflowConfig()
_DEFAULT_STAGE = StageConfig()


class ConfigError(ValueError):
    pass


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), then the environment. Raises ConfigError with a readable message."""
    path = path or os.environ.get("STAGEWATCH_CONFIG")
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            with open(p, encoding="utf-8") as f:  # a stream, so YAML's errors name the file, not "<unicode string>"
                loaded = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: the top level must be a mapping")
        data.update(loaded)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return Settings(**data)
    except ValidationError as exc:  # one line per field: its path, what is wrong, the value given
        lines = [f"  {'.'.join(str(x) for x in e['loc']) or '(top level)'}: {_config_problem(e)}" for e in exc.errors()]
        raise ConfigError(f"invalid configuration{f' in {path}' if path else ''}:\n" + "\n".join(lines)) from exc


def _config_problem(error: Any) -> str:
    """What is wrong with one setting, with the value given (never for a secret: it must not be echoed)."""
    if error["type"] == "extra_forbidden":
        return "not a setting here (misspelled, or in the wrong section?)"
    given = error.get("input")
    secret = any(w in str(part).lower() for part in error["loc"] for w in ("token", "password", "secret", "key"))
    # only a single field's scalar value: a whole section given wrongly may hold a password
    shown = len(error["loc"]) >= 2 and not secret and isinstance(given, str | int | float | bool | None)
    return f"{error['msg']} (given: {given!r})" if shown else error["msg"]
