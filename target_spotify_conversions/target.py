"""target-spotify-conversions: the Singer target, its settings and its run from start to end."""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import platform
import signal
import sys
import threading
import traceback
import typing as t

from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    MapExpressionError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)
from singer_sdk.mapper import StreamMap
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import serialize_json

from . import COMPILED_MODULES, PURE_PYTHON_SWITCH
from .batch_files import BatchFileError, batch_blocks
from .client import Aborted
from .escaping import install_log_escaping
from .messages import SchemaMessageError, check_schema_message
from .pipeline import Pipeline, RejectLimitError
from .reader import SafeReader, StopReading, raw_records
from .rejects import RejectedRecordError
from .report import SummaryFileError, unmatched_stream_maps, write_refused_summary
from .sdk_seams import ConfigInput
from .settings import (
    CONFIG_SCHEMA,
    ENV_PREFIX,
    SDK_SETTING_DESCRIPTIONS,
    Settings,
    SettingsError,
    read_environment,
    start_refusal,
    unknown_settings,
    without_sdk_nulls,
    without_secrets,
)
from .sinks import SpotifyConversionsSink
from .stream_maps import else_refusal, guard_stream_maps
from .transport import DeliveryError
from .unreadable import not_json
from .worker_pool import MappingProcessError

if t.TYPE_CHECKING:
    from types import FrameType

# Errors that end a run with a clear one-line message and no traceback; none quotes a record.
RUN_ERRORS = (
    StreamMapConfigError,
    MapExpressionError,
    DeliveryError,
    RejectedRecordError,
    RecordsWithoutSchemaException,
    InvalidInputLine,
    MappingProcessError,
    SchemaMessageError,
    BatchFileError,
    SummaryFileError,
    RejectLimitError,
)


# Streams whose lean path is logged by name; a run with thousands of streams logs the first few.
LEAN_STREAMS_LOGGED = 20
# Who checks a lean stream's records, by mapping_processes (more than one: "the mapping
# processes").
_CHECKERS = {0: "the reading process (mapping_processes 0)", 1: "the mapping process"}


class TargetSpotifyConversions(Target):
    """Delivers conversion events to the Spotify Conversions API."""

    name = "target-spotify-conversions"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = SpotifyConversionsSink
    message_reader_class = SafeReader

    def __init__(self, **kwargs: t.Any) -> None:
        if kwargs.get("parse_env_config"):  # `--config ENV`: read here, not by the SDK
            kwargs = {**kwargs, "parse_env_config": False,
                      "config": {**(kwargs.get("config") or {}), **self._environment()}}
        if isinstance(kwargs.get("config"), dict):
            kwargs = {**kwargs, "config": without_sdk_nulls(kwargs["config"])}
        try:
            self._configure(kwargs)
        except ConfigValidationError:
            config = _parsed_config(self)
            write_refused_summary(config.get("summary_file"), dry_run=config.get("dry_run") is True)
            raise
        self._pipeline: Pipeline | None = None  # the run's machinery starts with the run
        self._last_written_state: str | None = None
        self._schemas_checked: dict[str, tuple[t.Any, t.Any]] = {}
        self.stopped_by: int | None = None
        t.cast("SafeReader", self.message_reader).on_start = self._start_run
        if threading.current_thread() is threading.main_thread():
            # Replaces the handlers the SDK installed in __init__ (it would drain inside the
            # handler, wherever the main thread is, and exit 0 as if the input had ended).
            signal.signal(signal.SIGINT, self._stop_on_signal)
            signal.signal(signal.SIGTERM, self._stop_on_signal)

    def _configure(self, kwargs: dict[str, t.Any]) -> None:
        """The SDK's checks of the config, then this target's: a refused setting is named in
        one line that never quotes a secret."""
        try:
            super().__init__(**kwargs)
        except ConfigValidationError as exc:  # the SDK's messages quote values, secrets too
            config = _parsed_config(self)
            # A typo first: `dryrun` for dry_run makes the token "required", which misleads.
            refused = next(iter(unknown_settings(config, CONFIG_SCHEMA["properties"])), None)
            refused = refused or start_refusal(config)
            if refused:  # JSON schema's message would not say why
                refused = without_secrets(refused, config)
                raise ConfigValidationError(refused, errors=[refused]) from None
            raise _without_secrets(exc, config) from None
        except AttributeError:  # the SDK's check of a wrong `__else__` fails in jsonschema
            refused = else_refusal(_parsed_config(self).get("stream_maps"))
            if refused is None:
                raise
            raise ConfigValidationError(refused, errors=[refused]) from None
        typos = [
            without_secrets(typo, self.config)
            for typo in unknown_settings(self.config, self.config_jsonschema["properties"])
        ]
        if typos and kwargs.get("validate_config", True):
            raise ConfigValidationError(typos[0], errors=typos)
        self.max_parallelism = 1  # requests run in parallel in the pipeline, not sinks
        try:
            self.settings = Settings.from_config(self.config, read_from=self.read_files)
        except SettingsError as exc:  # a secret pasted into another setting is not shown
            message = without_secrets(str(exc), self.config)
            raise ConfigValidationError(message, errors=[message]) from None

    @classmethod
    def _environment(cls) -> dict[str, t.Any]:
        """The settings in TARGET_SPOTIFY_CONVERSIONS_* variables (and a .env file, looked for
        from the working directory up: the SDK looks from its own installed folder up, where
        no user keeps one), each read as its type (settings.read_environment). dotenv is
        imported here, by the runs that use it."""
        import dotenv

        dotenv.load_dotenv(dotenv.find_dotenv(usecwd=True), override=True)
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        values, problems = read_environment(schema, ENV_PREFIX, os.environ)
        if problems:
            write_refused_summary(values.get("summary_file"), dry_run=values.get("dry_run") is True)
            raise ConfigValidationError(problems[0], errors=problems)
        for name in values:
            cls.logger.info("Setting %s read from %s%s", name, ENV_PREFIX, name.upper())
        return values

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """The SDK's settings, described as they act here (see SDK_SETTING_DESCRIPTIONS)."""
        super().append_builtin_config(config_jsonschema)
        for name, description in SDK_SETTING_DESCRIPTIONS.items():
            properties = config_jsonschema["properties"]
            if name in properties:  # a copy: the SDK's own schema dicts stay as they are
                properties[name] = {**properties[name], "description": description}

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the run has not started: call listen()")
        return self._pipeline

    def _start_run(self) -> None:
        """Start the run's machinery (worker processes, files, request threads) as reading starts.

        Not in __init__: building a target (as --about, --help or the SDK's test runner do)
        must not start processes, open files or start threads.
        """
        TargetSpotifyConversions.running = self
        self.logger.info("Build: %s", build_description())
        self._pipeline = Pipeline(self.settings, self.logger, self._emit_state)
        # Everything built so far (the SDK, the HTTP stack, the settings) lives as long as the
        # run: out of the collector's sight, a full collection no longer walks it (it cost
        # about 30 ms each, 0.2 s of a 200,000-record run).
        gc.freeze()
        reader = t.cast("SafeReader", self.message_reader)
        reader.on_unreadable = self._pipeline.unreadable
        reader.on_too_long = self._pipeline.too_long
        reader.max_line_bytes = self.settings.max_line_bytes
        reader.on_tick = self._pipeline.idle
        reader.on_raw_lines = self._pipeline.process_lines

    def fail_run(self, outcome: str) -> None:
        """The run is failing: stop sending and print the summary, if the run had started."""
        if self._pipeline is not None:
            self._pipeline.fail(outcome)

    # --- messages ---------------------------------------------------------------------------

    def _process_schema_message(self, message_dict: dict[str, t.Any]) -> None:
        """A schema the SDK would choke on (or validate nothing with) stops the run, clearly."""
        stream = message_dict.get("stream")
        seen = (message_dict.get("schema"), message_dict.get("key_properties"))
        if not isinstance(stream, str) or self._schemas_checked.get(stream) != seen:
            check_schema_message(message_dict)  # taps may repeat a SCHEMA: check each once
            self._schemas_checked[message_dict["stream"]] = seen
        super()._process_schema_message(message_dict)  # (re)registers the stream's maps
        stream_maps = self.mapper.stream_maps[message_dict["stream"]]
        guard_stream_maps(stream_maps, self.pipeline.process)
        self._route_records(message_dict["stream"], stream_maps)

    def _route_records(self, stream: str, stream_maps: t.Sequence[StreamMap]) -> None:
        """Records of a stream the SDK would not change skip its per-record path: the reader
        hands them on undecoded and the mapping workers check them (the lean path)."""
        reader = t.cast("SafeReader", self.message_reader)
        sink = self.get_sink(stream_maps[0].stream_alias)  # the SDK made one for each map
        checks = sink.raw_checks(stream_maps) if isinstance(sink, SpotifyConversionsSink) else None
        if checks is None:
            reader.raw_streams.discard(stream)
            return
        self.pipeline.add_raw_stream(checks)
        if stream not in reader.raw_streams and len(reader.raw_streams) < LEAN_STREAMS_LOGGED:
            workers = self.pipeline.settings.mapping_processes
            checker = _CHECKERS.get(workers, "the mapping processes")
            self.logger.info(
                "Stream %s: records skip the SDK's per-record path (no stream map, flattening "
                "or metadata to apply); %s checks them",
                stream,
                checker,
            )
            if len(reader.raw_streams) == LEAN_STREAMS_LOGGED - 1:
                self.logger.info("Further streams taking that path are not named one by one")
        reader.raw_streams.add(stream)

    def _process_state_message(self, message_dict: dict[str, t.Any]) -> None:
        super()._process_state_message(message_dict)
        self.pipeline.state(message_dict["value"])

    def _process_batch_message(self, message_dict: dict[str, t.Any]) -> None:
        """Each line of the batch's files takes the RECORD path: stream maps, validation and
        all, or the lean path for a stream that has one (the SDK's own handling skips
        validation and stream maps, and holds a whole file in memory)."""
        reader = t.cast("SafeReader", self.message_reader)
        stream = message_dict.get("stream")
        lean = isinstance(stream, str) and stream in reader.raw_streams
        blocks = batch_blocks(
            message_dict, self.settings.max_line_bytes, lambda: reader.stop_requested
        )
        for block in blocks:
            raws = raw_records(block.text, block.lines) if lean else [None] * len(block.lines)
            for number, (line, raw) in enumerate(zip(block.lines, raws, strict=True), block.first):
                if reader.stop_requested:  # the STATE after the batch will not be read either
                    return
                if raw is not None:
                    self.pipeline.process_raw(t.cast("str", stream), raw, (number, block.url))
                elif line and not line.isspace():
                    self._batch_record(t.cast("str", stream), number, line, block.url)
                elif block.too_long and number - block.first in block.too_long:
                    size = block.too_long[number - block.first]
                    self.pipeline.too_long(number, size, block.url)

    def _batch_record(self, stream: str, number: int, line: bytes, url: str) -> None:
        """A BATCH file's line on the SDK's RECORD path (stream maps, validation and all)."""
        reader = t.cast("SafeReader", self.message_reader)
        try:
            record = reader.deserialize_json(line)
        except InvalidInputLine:
            self.pipeline.unreadable(number, not_json(number, url))
            return
        self._process_record_message({"type": "RECORD", "stream": stream, "record": record})

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        stream_maps = self.config.get("stream_maps") or {}
        self.pipeline.report.hints += unmatched_stream_maps(stream_maps, self.mapper.stream_maps)
        outcome = "completed"
        if self.stopped_by is not None:
            outcome = f"stopped by signal {self.stopped_by}; input not fully read"
        self.pipeline.finish(outcome)

    # --- STATE ------------------------------------------------------------------------------

    def _write_state_message(self, state: dict[str, t.Any]) -> None:
        """The SDK's drain path: settle everything read, and write nothing itself.

        The pipeline is the one writer of STATE (`_emit_state`): it writes each STATE as soon as
        every record before it is delivered or rejected, drains included.
        """
        self.pipeline.drain()

    def _emit_state(self, state: t.Any) -> None:
        """Write one STATE the pipeline found safe; the only place STATE reaches stdout."""
        self.pipeline.rejects.flush()  # a STATE never covers a reject not yet on disk
        if self.settings.dry_run:
            return  # a dry run delivers nothing: its STATE would make the real run skip records
        text = serialize_json(state)  # the SDK's json.dumps fails on Decimal in 0.54
        if text == self._last_written_state:  # a tap repeating its STATE: once is enough
            return
        self._last_written_state = text
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    # --- ending a run -----------------------------------------------------------------------

    def _stop_on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT or SIGTERM: one stop request, however many signals follow.

        Reading stops; events already read are delivered, but no request is retried any more;
        the STATE that covers what was delivered is written, the summary printed, and the exit
        status is 128 + the first signal. Later signals are logged and ignored: Meltano sends
        SIGINT then SIGTERM for one Ctrl-C. (The SDK drains inside the handler, wherever the
        main thread happens to be, and exits 0 as if the input had been read to its end.)
        """
        reader = t.cast("SafeReader", self.message_reader)
        if self.stopped_by is not None:
            self.logger.warning(
                "Signal %d: already stopping (SIGKILL or SIGQUIT exits at once)", signum
            )
            return
        self.stopped_by = signum
        reader.stop_requested = True
        if self._pipeline is not None:
            self._pipeline.stop()
        self.logger.warning(
            "Signal %d: reading stops; events already read are sent once each (no retries), "
            "then STATE",
            signum,
        )
        if reader.waiting_for_input:
            reader.waiting_for_input = False
            raise StopReading

    # The target whose run `invoke` started (the SDK builds it inside Target.invoke).
    running: t.ClassVar[TargetSpotifyConversions | None] = None
    # (what, path) of the files the command reads, `--config` and `--input`, for the settings
    # to keep outputs off them; the SDK merges the config files into one mapping and opens
    # the input before the target exists.
    read_files: t.ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> ConfigInput:
        """The SDK's `--config` callback, noting the file names first."""
        TargetSpotifyConversions.read_files = tuple(
            ("the --config file", path) for path in value if path != "ENV"
        )
        return super().cb_config(ctx, param, value)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: ConfigInput | None = None,
        file_input: t.IO[str] | None = None,
    ) -> None:
        """Run the target; a failing run ends with one clear line and exit 1, never a value."""
        install_log_escaping()
        TargetSpotifyConversions.running = None
        name = getattr(file_input, "name", None)
        if isinstance(name, str) and name != "<stdin>" and os.path.isfile(name):
            TargetSpotifyConversions.read_files += (("the --input file", name),)
        try:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
        except Exception as exc:
            target = TargetSpotifyConversions.running
            if target is None:  # failed before reading started: the SDK reports it
                raise
            sys.exit(target.failed(exc))
        finally:
            TargetSpotifyConversions.read_files = ()  # this invocation's, no later one's
        target = TargetSpotifyConversions.running
        if target is not None and target.stopped_by is not None:
            sys.exit(128 + target.stopped_by)

    def failed(self, exc: BaseException) -> int:
        """End a failing run: the summary, one clear log line (never a value), the exit code."""
        if self.stopped_by is not None and isinstance(exc, Aborted):
            self.fail_run(f"stopped by signal {self.stopped_by}; failing requests not retried")
            self.logger.error(
                "Stopped by signal %d while a request was failing: it was not retried; "
                "no STATE covers its events, so a re-run sends them again",
                self.stopped_by,
            )
            return 128 + self.stopped_by
        if self.stopped_by is not None and isinstance(exc, MappingProcessError):
            # A worker that stalls while the run stops: the stop is what the caller asked for
            # and what its exit code says; the log names the worker.
            self.fail_run(f"stopped by signal {self.stopped_by}; a mapping worker did not answer")
            self.logger.error("Stopped by signal %d; then %s", self.stopped_by, exc)
            return 128 + self.stopped_by
        if isinstance(exc, RUN_ERRORS):
            self.fail_run(f"failed: {type(exc).__name__}")
            # The SDK's stream map errors quote the expression: scrubbed as config messages are.
            self.logger.error("Run failed: %s", without_secrets(str(exc), self.config))
        elif isinstance(exc, OSError):  # a full disk, a file removed or made read-only mid-run
            with contextlib.suppress(OSError):  # closing the same file may fail again
                self.fail_run(f"failed: {exc.strerror or type(exc).__name__}")
            self.logger.error(
                "Run failed: could not write an output file (%s): check the disk behind "
                "rejects_file, dry_run_file and summary_file; no STATE was written past what is "
                "on disk, so a re-run sends the rest",
                exc.strerror or type(exc).__name__,
            )
        else:
            self.fail_run(f"failed: {type(exc).__name__}")
            # Messages of unexpected errors may quote input values: show only where it happened.
            where = "".join(traceback.format_tb(exc.__traceback__))
            # The traceback goes in the message, not as an argument: arguments are escaped.
            self.logger.error(
                "Internal error %s; no STATE written past it.\n" + where.replace("%", "%%"),
                type(exc).__name__,
            )
        return 1


def _parsed_config(target: Target) -> t.Mapping[str, t.Any]:
    """The settings as the SDK parsed them, for redaction; empty if it got no further."""
    try:
        return target.config
    except AttributeError:
        return {}


def _without_secrets(exc: ConfigValidationError, config: t.Mapping[str, t.Any]) -> Exception:
    errors = [without_secrets(str(error), config) for error in exc.errors]
    return ConfigValidationError(without_secrets(str(exc), config), errors=errors)


def build_description() -> str:
    """Which build runs, for the start-up log: a compiled build takes about a fifth less CPU a
    run, and a user who expected one must be able to see they did not get it."""
    version = platform.python_version()
    if COMPILED_MODULES:
        return f"compiled with mypyc, Python {version} ({len(COMPILED_MODULES)} modules)"
    return (
        f"pure Python {version} (no compiled modules: an editable install, no C compiler at "
        f"install, or {PURE_PYTHON_SWITCH} set)"
    )


def main() -> None:
    """The command: the SDK's CLI, and one line instead of a traceback for a config file that
    is no JSON (it is read while the options are parsed, before the target exists)."""
    try:
        TargetSpotifyConversions.cli()
    except ValueError as exc:
        if type(exc).__name__ != "JSONDecodeError":
            raise
        TargetSpotifyConversions.logger.error(
            "Run failed: a --config file is not valid JSON (%s)", without_quotes(str(exc))
        )
        sys.exit(1)


def without_quotes(message: str) -> str:
    """A JSON parser's message says where it failed; any quoted text of the file is cut."""
    return message.split(": '", 1)[0].split(': "', 1)[0]


if __name__ == "__main__":
    main()
