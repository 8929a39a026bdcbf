"""The Snowflake copy of the staging database: table contracts, DDL, the per-project copy and its checks.

Plain Python (no Dagster): ``defs/publish/snowflake.py`` wires it into assets.

- **Contracts.** A Snowflake table's columns come from the same contract as its PostgreSQL table, so the
  two cannot drift: the enforced dbt contracts of the canonical models (``data_type`` and constraints of
  each column in ``manifest.json``), and for ``migration.*`` the PostgreSQL DDL that creates those tables
  (``ID_MAP_DDL``, ``RECONCILIATION_DDL``), parsed with sqlglot.
- **Types** are mapped explicitly (:func:`snowflake_type`; docs/snowflake.md has the table): jsonb becomes
  VARIANT, every timestamp TIMESTAMP_NTZ in UTC, text VARCHAR, integers NUMBER(38,0); bytea (attachment
  bytes) is not copied unless asked for, and then becomes BINARY.
- **Copy** (:func:`replace_partition`): one project's rows are streamed out of PostgreSQL
  (``COPY ... TO STDOUT``, parsed by pyarrow a block at a time) and bulk-loaded in chunks with
  ``write_pandas`` into a temporary load table; then one
  transaction deletes the project's rows from the target tables and inserts the loaded ones
  (``INSERT ... SELECT``, ``PARSE_JSON`` for VARIANT). ``write_pandas`` creates a stage and a file format,
  which are DDL and would commit an open transaction in Snowflake: loading first keeps the replacement
  itself atomic.
- **Checks** (:func:`postgres_tally`, :func:`snowflake_tally`): the row count and a checksum over the key
  columns of one project, computed by the same SQL text on both sides (see :func:`checksum_sql`).
- **The embedded default** (:func:`embedded_snowflake`): fakesnow routes ``snowflake.connector`` to DuckDB
  files, for a local run without an account.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from zephyr_qtest.lib.dbt import manifest_path
from zephyr_qtest.lib.postgres import connect

if TYPE_CHECKING:
    import pandas as pd

# pandas and the Snowflake connector are imported where they are used: this module is imported whenever the
# definitions load (every run's process), and the two take longer to import than the rest of it.

CANONICAL_SCHEMA = "canonical"
MIGRATION_SCHEMA = "migration"
PROJECT_COLUMN = "project_key"
DEFAULT_CHUNK_ROWS = 100_000
# The digits of an md5 that make a row's checksum term: 12 hex digits (48 bits), so a billion rows sum
# to well under 38 decimal digits.
CHECKSUM_HEX_DIGITS = 12


class ContractError(ValueError):
    """A table contract that cannot be copied as it is (unknown type, missing column, no project_key)."""


# --------------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------------

# Kinds: how a value travels (PostgreSQL select expression, pandas dtype) whatever its exact type name.
NUMBER, DECIMAL, FLOAT, TEXT, BOOLEAN, TIMESTAMP, TIMESTAMPTZ, DATE, JSON, BINARY = (
    "number",
    "decimal",
    "float",
    "text",
    "boolean",
    "timestamp",
    "timestamptz",
    "date",
    "json",
    "binary",
)

_TYPE_RULES: tuple[tuple[str, str, str], ...] = (
    # (PostgreSQL / dbt contract type, as a full-match regex; kind; Snowflake type)
    (r"smallint|integer|int|int2|int4|int8|bigint|smallserial|serial|bigserial", NUMBER, "NUMBER(38,0)"),
    (r"(?:numeric|decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", DECIMAL, "NUMBER({0},{1})"),
    (r"(?:numeric|decimal)\s*\(\s*(\d+)\s*\)", DECIMAL, "NUMBER({0},0)"),
    # Snowflake's bare NUMBER has scale 0: an unconstrained numeric keeps 9 decimals.
    (r"numeric|decimal", DECIMAL, "NUMBER(38,9)"),
    (r"real|float4|float8|float|double precision|double", FLOAT, "FLOAT"),
    (
        r"text|citext|uuid|name|(?:character varying|varchar|character|char|bpchar)(?:\s*\(\s*\d+\s*\))?",
        TEXT,
        "VARCHAR",
    ),
    (r"boolean|bool", BOOLEAN, "BOOLEAN"),
    (r"timestamp(?:\s*\(\d\))?(?: without time zone)?", TIMESTAMP, "TIMESTAMP_NTZ"),
    (r"timestamptz|timestamp(?:\s*\(\d\))? with time zone", TIMESTAMPTZ, "TIMESTAMP_NTZ"),
    (r"date", DATE, "DATE"),
    (r"jsonb|json", JSON, "VARIANT"),
    (r"bytea", BINARY, "BINARY"),
)


def _type_rule(source_type: str) -> tuple[str, str]:
    normalised = " ".join(source_type.strip().lower().split())
    for pattern, kind, target in _TYPE_RULES:
        match = re.fullmatch(pattern, normalised)
        if match:
            return kind, target.format(*match.groups())
    raise ContractError(f"no Snowflake type for the PostgreSQL type {source_type!r}")


def type_kind(source_type: str) -> str:
    """How values of this PostgreSQL type travel: one of the kinds above."""
    return _type_rule(source_type)[0]


def snowflake_type(source_type: str, *, copy_binary: bool = False) -> str | None:
    """The Snowflake type of a PostgreSQL / dbt contract type; None for bytea unless ``copy_binary``."""
    kind, target = _type_rule(source_type)
    if kind == BINARY and not copy_binary:
        return None
    return target


# --------------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    source_type: str
    not_null: bool = False

    @property
    def kind(self) -> str:
        return type_kind(self.source_type)


@dataclass(frozen=True)
class TableContract:
    """One table as it is in PostgreSQL (``source_schema.name``) and in Snowflake (``name``, upper-cased)."""

    name: str
    source_schema: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    origin: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if PROJECT_COLUMN not in names:
            raise ContractError(
                f"{self.qualified_source}: no {PROJECT_COLUMN} column, so no per-project copy"
            )
        for column in self.columns:
            type_kind(column.source_type)  # fails early, naming the type
        unknown = [key for key in self.primary_key if key not in names]
        if unknown:
            raise ContractError(f"{self.qualified_source}: primary key column(s) {unknown} are not columns")

    @property
    def qualified_source(self) -> str:
        return f"{self.source_schema}.{self.name}"

    @property
    def snowflake_name(self) -> str:
        return self.name.upper()

    def copied_columns(self, *, copy_binary: bool = False) -> tuple[Column, ...]:
        """The columns that reach Snowflake: all but bytea, unless ``copy_binary``."""
        return tuple(c for c in self.columns if copy_binary or c.kind != BINARY)

    def skipped_columns(self, *, copy_binary: bool = False) -> tuple[str, ...]:
        copied = {c.name for c in self.copied_columns(copy_binary=copy_binary)}
        return tuple(c.name for c in self.columns if c.name not in copied)

    @property
    def checksum_key(self) -> tuple[str, ...]:
        """The columns the key checksum covers: the primary key, else every plain (text, number) column."""
        if self.primary_key:
            return self.primary_key
        return tuple(c.name for c in self.columns if c.kind in (NUMBER, DECIMAL, TEXT, BOOLEAN, DATE))


def _load_manifest(manifest: Mapping[str, Any] | Path | None) -> Mapping[str, Any]:
    if manifest is None:
        manifest = manifest_path()
    if isinstance(manifest, Path):
        return json.loads(manifest.read_text())
    return manifest


def canonical_contracts(manifest: Mapping[str, Any] | Path | None = None) -> dict[str, TableContract]:
    """Every model dbt builds into the ``canonical`` schema, from its enforced contract in the manifest."""
    nodes = _load_manifest(manifest)["nodes"]
    contracts: dict[str, TableContract] = {}
    for unique_id, node in sorted(nodes.items()):
        if node.get("resource_type") != "model" or node["config"].get("schema") != CANONICAL_SCHEMA:
            continue
        name = node.get("alias") or node["name"]
        if not node["config"].get("contract", {}).get("enforced"):
            raise ContractError(
                f"{unique_id}: the contract is not enforced, so its column types are not known"
            )
        columns: list[Column] = []
        primary_key: list[str] = []
        for column_name, column in node["columns"].items():
            if not column.get("data_type"):
                raise ContractError(f"{unique_id}.{column_name}: no data_type in the contract")
            kinds = {constraint["type"] for constraint in column.get("constraints", [])}
            columns.append(
                Column(column_name, column["data_type"], not_null=bool(kinds & {"not_null", "primary_key"}))
            )
            if "primary_key" in kinds:
                primary_key.append(column_name)
        for constraint in node.get("constraints", []):
            if constraint["type"] == "primary_key":
                primary_key = list(constraint["columns"])
        not_null = set(primary_key)
        columns = [Column(c.name, c.source_type, c.not_null or c.name in not_null) for c in columns]
        contracts[name] = TableContract(
            name,
            CANONICAL_SCHEMA,
            tuple(columns),
            tuple(primary_key),
            origin=f"dbt contract {unique_id}",
            description=" ".join((node.get("description") or "").split()),
        )
    return contracts


def contracts_from_ddl(ddl: str, origin: str) -> dict[str, TableContract]:
    """Table contracts from PostgreSQL ``create table`` statements (columns, not null, primary key)."""
    import sqlglot
    from sqlglot import exp

    contracts: dict[str, TableContract] = {}
    for statement in sqlglot.parse(ddl, read="postgres"):
        if not isinstance(statement, exp.Create) or (statement.kind or "").upper() != "TABLE":
            continue
        schema_expression = statement.this
        table = schema_expression.this
        columns: list[Column] = []
        primary_key: list[str] = []
        for item in schema_expression.expressions:
            if isinstance(item, exp.ColumnDef):
                kinds = [constraint.kind for constraint in item.constraints]
                is_key = any(isinstance(kind, exp.PrimaryKeyColumnConstraint) for kind in kinds)
                not_null = is_key or any(
                    isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null")
                    for kind in kinds
                )
                columns.append(Column(item.name, item.args["kind"].sql("postgres").lower(), not_null))
                if is_key:
                    primary_key.append(item.name)
            elif isinstance(item, exp.PrimaryKey):
                primary_key = [key.name for key in item.expressions]
        not_null_keys = set(primary_key)
        columns = [Column(c.name, c.source_type, c.not_null or c.name in not_null_keys) for c in columns]
        contracts[table.name] = TableContract(
            table.name, table.db or "public", tuple(columns), tuple(primary_key), origin=origin
        )
    return contracts


def migration_contracts() -> dict[str, TableContract]:
    """``migration.id_map``, ``migration.reconciliation`` and ``migration.reconciliation_mismatch`` (the
    loader's own check), ``migration.proof`` and ``migration.ledger`` (the verdict and every value that did
    not arrive), from the DDL that creates them in PostgreSQL."""
    from zephyr_qtest.lib.proof.saved import PROOF_DDL
    from zephyr_qtest.lib.qtest.id_map import ID_MAP_DDL
    from zephyr_qtest.lib.qtest.reconcile import RECONCILIATION_DDL

    return {
        **contracts_from_ddl(ID_MAP_DDL, "zephyr_qtest.lib.qtest.id_map.ID_MAP_DDL"),
        **contracts_from_ddl(RECONCILIATION_DDL, "zephyr_qtest.lib.qtest.reconcile.RECONCILIATION_DDL"),
        **contracts_from_ddl(PROOF_DDL, "zephyr_qtest.lib.proof.saved.PROOF_DDL"),
    }


# --------------------------------------------------------------------------------------------------
# SQL
# --------------------------------------------------------------------------------------------------


def quote_snowflake(name: str) -> str:
    """A Snowflake identifier: upper-cased and quoted, i.e. what the unquoted name resolves to."""
    return '"' + name.upper().replace('"', '""') + '"'


def quote_postgres(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(contract: TableContract, *, copy_binary: bool = False) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the target table: the contract's columns, types, NOT NULL and
    primary key (Snowflake records a primary key without enforcing it)."""
    lines = []
    for column in contract.copied_columns(copy_binary=copy_binary):
        target = snowflake_type(column.source_type, copy_binary=copy_binary)
        lines.append(f"{quote_snowflake(column.name)} {target}{' NOT NULL' if column.not_null else ''}")
    if contract.primary_key:
        keys = ", ".join(quote_snowflake(key) for key in contract.primary_key)
        lines.append(f"CONSTRAINT {quote_snowflake(contract.name + '_pk')} PRIMARY KEY ({keys})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {quote_snowflake(contract.name)} (\n    {body}\n)"


def load_table_name(contract: TableContract, project_key: str) -> str:
    """The temporary table a project's rows are bulk-loaded into before the replacing transaction."""
    return f"{contract.name}__zq_load_{re.sub(r'[^0-9A-Za-z_]', '_', project_key)}".upper()


def _load_type(column: Column, *, copy_binary: bool) -> str:
    # VARIANT arrives as JSON text and is parsed by the INSERT ... SELECT (a string loaded straight into
    # a VARIANT column would stay a string).
    return (
        "VARCHAR" if column.kind == JSON else str(snowflake_type(column.source_type, copy_binary=copy_binary))
    )


def create_load_table_sql(contract: TableContract, project_key: str, *, copy_binary: bool = False) -> str:
    columns = ", ".join(
        f"{quote_snowflake(c.name)} {_load_type(c, copy_binary=copy_binary)}"
        for c in contract.copied_columns(copy_binary=copy_binary)
    )
    return f"CREATE OR REPLACE TEMPORARY TABLE {quote_snowflake(load_table_name(contract, project_key))} ({columns})"


def insert_from_load_sql(contract: TableContract, project_key: str, *, copy_binary: bool = False) -> str:
    copied = contract.copied_columns(copy_binary=copy_binary)
    names = ", ".join(quote_snowflake(c.name) for c in copied)
    values = ", ".join(
        f"PARSE_JSON({quote_snowflake(c.name)})" if c.kind == JSON else quote_snowflake(c.name)
        for c in copied
    )
    return (
        f"INSERT INTO {quote_snowflake(contract.name)} ({names}) "
        f"SELECT {values} FROM {quote_snowflake(load_table_name(contract, project_key))}"
    )


def delete_partition_sql(contract: TableContract) -> str:
    return f"DELETE FROM {quote_snowflake(contract.name)} WHERE {quote_snowflake(PROJECT_COLUMN)} = %s"


def postgres_select_sql(contract: TableContract, *, copy_binary: bool = False) -> str:
    """One project's rows as they go to Snowflake: timestamptz as naive UTC, json as its text."""
    expressions = []
    for column in contract.copied_columns(copy_binary=copy_binary):
        name = quote_postgres(column.name)
        if column.kind == TIMESTAMPTZ:
            expressions.append(f"({name} at time zone 'UTC') as {name}")
        elif column.kind == DECIMAL and snowflake_type(column.source_type) == "NUMBER(38,9)":
            expressions.append(f"round({name}, 9) as {name}")
        elif column.kind == JSON or column.source_type.lower() == "uuid":
            expressions.append(f"{name}::text as {name}")
        else:
            expressions.append(name)
    table = f"{quote_postgres(contract.source_schema)}.{quote_postgres(contract.name)}"
    return f"select {', '.join(expressions)} from {table} where {quote_postgres(PROJECT_COLUMN)} = %s"


def checksum_sql(contract: TableContract, *, dialect: str) -> str:
    """Row count and key checksum of one project (``%s`` = the project key), for ``postgres`` or ``snowflake``.

    The checksum is the sum over the rows of the first 12 hex digits (48 bits) of ``MD5`` of the key
    columns cast to VARCHAR and joined with ``|``. Every function used (``MD5``, ``SUBSTR``,
    ``POSITION(... IN ...)``, ``COALESCE``, ``CAST(... AS VARCHAR / BIGINT / DECIMAL(38,0))``) exists with
    the same meaning in PostgreSQL, Snowflake and DuckDB (under fakesnow), so the two sides run the same
    text. Hex digits are turned into a number with ``POSITION`` because no hex-to-number conversion is
    common to the three (Snowflake's ``TO_NUMBER(x, 'XXXX')`` is not emulated by fakesnow). The sum is a
    DECIMAL(38,0): fakesnow sums other numbers as DOUBLE, which would lose digits.
    """
    if dialect not in ("postgres", "snowflake"):
        raise ValueError(f"unknown dialect {dialect!r}")
    quote = quote_postgres if dialect == "postgres" else quote_snowflake
    keys = " || '|' || ".join(f"COALESCE(CAST({quote(key)} AS VARCHAR), '')" for key in contract.checksum_key)
    digits = " + ".join(
        f"(POSITION(SUBSTR(zq_hash, {position + 1}, 1) IN '0123456789abcdef') - 1)"
        f" * CAST({16 ** (CHECKSUM_HEX_DIGITS - 1 - position)} AS BIGINT)"
        for position in range(CHECKSUM_HEX_DIGITS)
    )
    if dialect == "postgres":
        table = f"{quote(contract.source_schema)}.{quote(contract.name)}"
    else:
        table = quote(contract.name)
    return (
        f"SELECT COUNT(*), SUM(CAST({digits} AS DECIMAL(38,0))) "
        f"FROM (SELECT MD5({keys}) AS zq_hash FROM {table} WHERE {quote(PROJECT_COLUMN)} = %s) AS zq_keys"
    )


# --------------------------------------------------------------------------------------------------
# Streaming rows out of PostgreSQL
# --------------------------------------------------------------------------------------------------


def arrow_type(column: Column) -> Any:
    """The Arrow type a column's values are parsed into (and written to Parquet / DuckDB with)."""
    import pyarrow as pa

    kind = column.kind
    if kind == NUMBER:
        return pa.int64()
    if kind == DECIMAL:
        match = re.search(r"NUMBER\((\d+),(\d+)\)", str(snowflake_type(column.source_type)))
        assert match is not None
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if kind == FLOAT:
        return pa.float64()
    if kind == BOOLEAN:
        return pa.bool_()
    if kind in (TIMESTAMP, TIMESTAMPTZ):
        return pa.timestamp("us")  # naive UTC, microseconds as PostgreSQL keeps them
    if kind == DATE:
        return pa.date32()
    return pa.string()  # text, json (as its text), binary (as hex, decoded after parsing)


def copy_sql(contract: TableContract, *, copy_binary: bool = False) -> str:
    """``COPY (select ...) TO STDOUT`` as CSV for one project (``%s`` = the project key). CSV tells NULL
    (unquoted empty) from the empty string (``""``); bytea goes as hex."""
    select = postgres_select_sql(contract, copy_binary=copy_binary)
    return f"copy ({select}) to stdout with (format csv)"


class _CopyStream(io.RawIOBase):
    """A file-like view of a psycopg ``Copy`` (an iterator of byte blocks), for pyarrow's CSV reader."""

    def __init__(self, blocks: Iterable[bytes | memoryview]) -> None:
        self._blocks = iter(blocks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending):
            try:
                self._pending = memoryview(bytes(next(self._blocks)))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def read_csv_frames(
    stream: Any, columns: Sequence[Column], *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """PostgreSQL's CSV (no header) as DataFrames of about ``chunk_rows`` rows, parsed by pyarrow in blocks
    (memory stays bounded whatever the table's size).

    Columns are named in upper case (what the unquoted names of the DDL resolve to) and typed explicitly
    from the contract, as Arrow-backed pandas columns: integers stay exact, NULL stays NULL and the empty
    string stays empty, timestamps are naive UTC. No Python object per value.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not isinstance(stream, io.BufferedReader):
        stream = io.BufferedReader(stream)
    if not stream.peek(1):
        return  # no rows: pyarrow refuses an empty CSV ("Empty CSV file") rather than reading none
    names = [column.name.upper() for column in columns]
    types = {name: arrow_type(column) for name, column in zip(names, columns, strict=True)}
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    binary = [column.name.upper() for column in columns if column.kind == BINARY]
    batches: list[Any] = []
    pending = 0
    for batch in _batches(reader, chunk_rows):
        batches.append(batch)
        pending += batch.num_rows
        if pending >= chunk_rows:
            yield _to_frame(pa.Table.from_batches(batches), binary)
            batches, pending = [], 0
    if pending:
        yield _to_frame(pa.Table.from_batches(batches), binary)


def _batches(reader: Any, chunk_rows: int) -> Iterator[Any]:
    for batch in reader:
        for offset in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(offset, chunk_rows)


def _to_frame(table: Any, binary: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    for name in binary:  # opt-in attachment bytes: hex text as PostgreSQL wrote it (\\x...) to bytes
        frame[name] = pd.Series(
            [None if value is None else bytes.fromhex(value[2:]) for value in table.column(name).to_pylist()],
            dtype="object",
        )
    return frame


def iter_frames(
    pg_conn: psycopg.Connection,
    contract: TableContract,
    project_key: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    copy_binary: bool = False,
) -> Iterator[pd.DataFrame]:
    """One project's rows of a table, streamed out of PostgreSQL with ``COPY ... TO STDOUT`` (the server
    sends them as the client reads) and parsed a block at a time."""
    columns = contract.copied_columns(copy_binary=copy_binary)
    with (
        pg_conn.cursor() as cursor,
        cursor.copy(copy_sql(contract, copy_binary=copy_binary), (project_key,)) as copy,
    ):
        yield from read_csv_frames(
            io.BufferedReader(_CopyStream(copy), 1 << 20), columns, chunk_rows=chunk_rows
        )


# --------------------------------------------------------------------------------------------------
# The copy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A project's row count and key checksum in one table."""

    rows: int
    checksum: int


@dataclass
class TableCopy:
    contract: TableContract
    source_exists: bool = True
    rows: int = 0
    chunks: int = 0
    seconds: float = 0.0
    postgres: Tally = field(default_factory=lambda: Tally(0, 0))
    skipped_columns: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()


def _tally(row: Sequence[Any] | None) -> Tally:
    if row is None:
        return Tally(0, 0)
    return Tally(int(row[0] or 0), int(row[1] or 0))


def postgres_tally(pg_conn: psycopg.Connection, contract: TableContract, project_key: str) -> Tally:
    if not _postgres_table_exists(pg_conn, contract):
        return Tally(0, 0)
    return _tally(pg_conn.execute(checksum_sql(contract, dialect="postgres"), (project_key,)).fetchone())  # type: ignore[arg-type]


def snowflake_tally(sf_conn: Any, contract: TableContract, project_key: str) -> Tally:
    cursor = sf_conn.cursor()
    try:
        cursor.execute(checksum_sql(contract, dialect="snowflake"), (project_key,))
        return _tally(cursor.fetchone())
    finally:
        cursor.close()


def _postgres_table_exists(pg_conn: psycopg.Connection, contract: TableContract) -> bool:
    row = pg_conn.execute(
        "select to_regclass(%s) is not null",
        (f"{quote_postgres(contract.source_schema)}.{quote_postgres(contract.name)}",),
    ).fetchone()
    return bool(row and row[0])


def _postgres_columns(pg_conn: psycopg.Connection, contract: TableContract) -> set[str]:
    rows = pg_conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
        (contract.source_schema, contract.name),
    ).fetchall()
    return {row[0] for row in rows}


def _execute(sf_conn: Any, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    cursor = sf_conn.cursor()
    try:
        cursor.execute(statement, params)
        try:
            return list(cursor.fetchall())
        except Exception:  # a statement without a result set
            return []
    finally:
        cursor.close()


def current_location(sf_conn: Any) -> tuple[str | None, str | None]:
    """The session's database and schema (None when the configured ones do not exist or are not usable)."""
    row = _execute(sf_conn, "SELECT CURRENT_DATABASE(), CURRENT_SCHEMA()")[0]
    return row[0], row[1]


def ensure_table(sf_conn: Any, contract: TableContract, *, copy_binary: bool = False) -> tuple[str, ...]:
    """Create the target table if it is missing; add the contract's columns it lacks (a contract that grew).
    Returns the added columns."""
    _execute(sf_conn, create_table_sql(contract, copy_binary=copy_binary))
    existing = {
        row[0].upper()
        for row in _execute(
            sf_conn,
            "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() AND TABLE_NAME = %s",
            (contract.snowflake_name,),
        )
    }
    added = []
    for column in contract.copied_columns(copy_binary=copy_binary):
        if existing and column.name.upper() not in existing:
            target = snowflake_type(column.source_type, copy_binary=copy_binary)
            _execute(
                sf_conn,
                f"ALTER TABLE {quote_snowflake(contract.name)} ADD COLUMN {quote_snowflake(column.name)} {target}",
            )
            added.append(column.name)
    return tuple(added)


def _load(
    pg_conn: psycopg.Connection,
    sf_conn: Any,
    contract: TableContract,
    project_key: str,
    *,
    chunk_rows: int,
    copy_binary: bool,
) -> TableCopy:
    """Stream the project's rows out of PostgreSQL into the temporary load table, a chunk at a time."""
    started = time.monotonic()
    result = TableCopy(contract, skipped_columns=contract.skipped_columns(copy_binary=copy_binary))
    result.added_columns = ensure_table(sf_conn, contract, copy_binary=copy_binary)
    _execute(sf_conn, create_load_table_sql(contract, project_key, copy_binary=copy_binary))
    if not _postgres_table_exists(pg_conn, contract):
        result.source_exists = False
        result.seconds = time.monotonic() - started
        return result
    columns = contract.copied_columns(copy_binary=copy_binary)
    missing = sorted({c.name for c in columns} - _postgres_columns(pg_conn, contract))
    if missing:
        raise ContractError(
            f"{contract.qualified_source} lacks the column(s) {', '.join(missing)} of its contract "
            f"({contract.origin}); build the table again (dbt build / the qTest assets) before copying it"
        )
    # Called as ``pandas_tools.write_pandas`` at call time, never imported by name: fakesnow patches the
    # attribute of this module, so nothing of ours has to be named in its ``extra_targets``.
    from snowflake.connector import pandas_tools

    load_table = load_table_name(contract, project_key)
    for chunk in iter_frames(pg_conn, contract, project_key, chunk_rows=chunk_rows, copy_binary=copy_binary):
        success, _, loaded, _ = pandas_tools.write_pandas(
            sf_conn,
            chunk,
            load_table,
            quote_identifiers=True,
            auto_create_table=False,
            use_logical_type=True,
        )
        if not success or loaded != len(chunk):
            raise RuntimeError(
                f"write_pandas loaded {loaded} of {len(chunk)} rows into {load_table} for {project_key}"
            )
        result.rows += len(chunk)
        result.chunks += 1
    result.seconds = time.monotonic() - started
    return result


def replace_partition(
    database_url: str,
    sf_conn: Any,
    contracts: Iterable[TableContract],
    project_key: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    copy_binary: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[TableCopy]:
    """Replace one project's rows of each table in Snowflake with its rows in PostgreSQL.

    Each table's rows are streamed out of PostgreSQL (``COPY ... TO STDOUT``, parsed in blocks) and loaded
    ``chunk_rows`` at a time into a temporary load table with ``write_pandas``; then one Snowflake transaction deletes the project's rows from every
    target table and inserts the loaded ones. Other projects' rows are never touched. A table missing in
    PostgreSQL copies zero rows (and so empties the project's rows in Snowflake).

    PostgreSQL is read in one repeatable-read snapshot, which also gives each result's ``postgres`` tally,
    so the checks compare Snowflake with exactly the rows that were copied.
    """
    contracts = list(contracts)
    say = log or (lambda message: None)
    copies: list[TableCopy] = []
    with connect(database_url) as pg_conn:
        pg_conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg_conn.read_only = True
        with pg_conn.transaction():
            # The text forms read_csv_frames parses, whatever the server's or role's defaults.
            pg_conn.execute("set local datestyle = 'ISO, YMD'")
            pg_conn.execute("set local bytea_output = 'hex'")
            for contract in contracts:
                copy = _load(
                    pg_conn, sf_conn, contract, project_key, chunk_rows=chunk_rows, copy_binary=copy_binary
                )
                if not copy.source_exists:
                    say(
                        f"{contract.qualified_source} does not exist in PostgreSQL: 0 rows of {project_key} copied"
                    )
                copy.postgres = (
                    postgres_tally(pg_conn, contract, project_key) if copy.source_exists else Tally(0, 0)
                )
                copies.append(copy)
        started = time.monotonic()
        _execute(sf_conn, "BEGIN")
        try:
            for copy in copies:
                _execute(sf_conn, delete_partition_sql(copy.contract), (project_key,))
                _execute(sf_conn, insert_from_load_sql(copy.contract, project_key, copy_binary=copy_binary))
            _execute(sf_conn, "COMMIT")
        except BaseException:
            _execute(sf_conn, "ROLLBACK")
            raise
        replaced = time.monotonic() - started
        for copy in copies:
            copy.seconds += replaced / len(copies)
            _execute(
                sf_conn,
                f"DROP TABLE IF EXISTS {quote_snowflake(load_table_name(copy.contract, project_key))}",
            )
    return copies


# --------------------------------------------------------------------------------------------------
# The embedded default: fakesnow on DuckDB files
# --------------------------------------------------------------------------------------------------

EMBEDDED_DATABASE = "ZEPHYR_QTEST"
EMBEDDED_SCHEMA = "MIGRATION"

_embedded_lock = threading.Lock()
_embedded_state: dict[str, Any] = {"users": 0, "directory": None, "stack": None}


@contextmanager
def embedded_snowflake(directory: Path) -> Iterator[Path]:
    """While inside, ``snowflake.connector.connect`` (and ``write_pandas``) go to fakesnow, which keeps each
    Snowflake database in the DuckDB file ``<directory>/<DATABASE>.db``.

    fakesnow's patch is per process (Dagster runs each step process apart, so each applies it) and may not
    be applied twice: this counts its users and removes the patch, which closes DuckDB and releases the
    file for other processes, when the last one leaves.
    """
    import fakesnow

    # fakesnow warns on every fetch that DuckDB copies the Arrow result: true, harmless, and noisy.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    directory = directory.resolve()
    with _embedded_lock:
        if _embedded_state["users"] == 0:
            directory.mkdir(parents=True, exist_ok=True)
            stack = ExitStack()
            stack.enter_context(fakesnow.patch(db_path=directory))
            _embedded_state.update(directory=directory, stack=stack)
        elif _embedded_state["directory"] != directory:
            raise RuntimeError(
                f"the embedded Snowflake is already open on {_embedded_state['directory']} in this process; "
                f"it cannot open {directory} at the same time"
            )
        _embedded_state["users"] += 1
    try:
        yield directory
    finally:
        with _embedded_lock:
            _embedded_state["users"] -= 1
            if _embedded_state["users"] == 0:
                stack = _embedded_state["stack"]
                _embedded_state.update(directory=None, stack=None)
                stack.close()


def is_file_lock_error(error: BaseException) -> bool:
    """DuckDB's answer when another process holds the database file."""
    return "Could not set lock on file" in str(error)


def connect_waiting_for_lock(connect_once: Callable[[], Any], *, wait_seconds: float = 300.0) -> Any:
    """Connect to the embedded Snowflake, waiting while another process (another run's step) holds the
    DuckDB file; DuckDB allows one writing process at a time."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    while True:
        try:
            return connect_once()
        except Exception as error:
            if not is_file_lock_error(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
