"""The Snowflake side's contract: DDL generated from the dbt contracts (and the migration DDL) with types
mapped as docs/snowflake.md says, and a key checksum that means the same on every engine."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

import pandas as pd
import pytest
import snowflake.connector
import sqlglot
from sqlglot import exp

from zephyr_qtest.lib import snowflake as warehouse
from zephyr_qtest.lib.dbt import manifest_path

CANONICAL_TABLES = {
    "project", "folder", "test_case", "test_step", "test_cycle", "test_execution", "custom_field",
    "attachment", "test_execution_step", "test_script", "test_plan", "test_plan_test_cycle", "label",
    "issue_link", "web_link", "test_step_parameter", "environment", "status", "priority", "user_ref",
}  # fmt: skip

# The mapping docs/snowflake.md promises, type by type.
MAPPING = {
    "bigint": "NUMBER(38,0)",
    "integer": "NUMBER(38,0)",
    "int": "NUMBER(38,0)",
    "smallint": "NUMBER(38,0)",
    "numeric(12,2)": "NUMBER(12,2)",
    "numeric": "NUMBER(38,9)",
    "double precision": "FLOAT",
    "text": "VARCHAR",
    "varchar": "VARCHAR",
    "varchar(255)": "VARCHAR",
    "character varying": "VARCHAR",
    "uuid": "VARCHAR",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP_NTZ",
    "timestamp without time zone": "TIMESTAMP_NTZ",
    "timestamptz": "TIMESTAMP_NTZ",
    "timestamp with time zone": "TIMESTAMP_NTZ",
    "date": "DATE",
    "jsonb": "VARIANT",
    "json": "VARIANT",
}


@pytest.mark.parametrize(("source", "target"), sorted(MAPPING.items()))
def test_types_map_as_documented(source: str, target: str) -> None:
    assert warehouse.snowflake_type(source) == target
    assert warehouse.snowflake_type(source.upper()) == target


def test_bytea_is_not_copied_unless_asked_and_then_is_binary() -> None:
    assert warehouse.snowflake_type("bytea") is None
    assert warehouse.snowflake_type("bytea", copy_binary=True) == "BINARY"


def test_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(warehouse.ContractError, match="tsvector"):
        warehouse.snowflake_type("tsvector")


def test_the_documented_mapping_is_in_the_docs() -> None:
    docs = (manifest_path().parents[2] / "docs" / "snowflake.md").read_text()
    for target in ("VARIANT", "TIMESTAMP_NTZ", "VARCHAR", "NUMBER(38,0)", "BOOLEAN", "BINARY"):
        assert target in docs


def _parsed_columns(ddl: str) -> tuple[str, dict[str, tuple[str, bool]], list[str]]:
    """(table, {column: (type, not null)}, primary key) of a generated CREATE TABLE, read back by sqlglot."""
    create = sqlglot.parse_one(ddl, read="snowflake")
    assert isinstance(create, exp.Create)
    columns: dict[str, tuple[str, bool]] = {}
    primary_key: list[str] = []
    for item in create.this.expressions:
        if isinstance(item, exp.ColumnDef):
            not_null = any(isinstance(c.kind, exp.NotNullColumnConstraint) for c in item.constraints)
            columns[item.name] = (item.args["kind"].sql("snowflake"), not_null)
        elif isinstance(item, exp.Constraint):
            primary_key = [key.name for key in item.find(exp.PrimaryKey).expressions]
    return create.this.this.name, columns, primary_key


def _normalise(snowflake_sql_type: str) -> str:
    return sqlglot.parse_one(f"CAST(x AS {snowflake_sql_type})", read="snowflake").to.sql("snowflake")


def test_every_canonical_table_has_ddl_matching_its_dbt_contract() -> None:
    manifest = json.loads(manifest_path().read_text())
    contracts = warehouse.canonical_contracts(manifest)
    assert set(contracts) == CANONICAL_TABLES
    models = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("schema") == "canonical"
    }
    for name, contract in contracts.items():
        table, columns, primary_key = _parsed_columns(warehouse.create_table_sql(contract))
        assert table == name.upper()
        model_columns = models[name]["columns"]
        expected = {
            column_name.upper(): column["data_type"]
            for column_name, column in model_columns.items()
            if column["data_type"] != "bytea"
        }
        assert set(columns) == set(expected), name
        assert "PROJECT_KEY" in columns, name
        for column_name, data_type in expected.items():
            assert columns[column_name][0] == _normalise(MAPPING[data_type]), (name, column_name)
            constraints = {c["type"] for c in model_columns[column_name.lower()].get("constraints", [])}
            if constraints & {"not_null", "primary_key"}:
                assert columns[column_name][1], (name, column_name)
        declared_key = [c.upper() for c, col in model_columns.items() if any(
            k["type"] == "primary_key" for k in col.get("constraints", [])
        )] or [c.upper() for k in models[name].get("constraints", []) if k["type"] == "primary_key" for c in k["columns"]]  # fmt: skip
        assert primary_key == declared_key, name
        assert primary_key, f"{name} has no primary key to checksum"


def test_attachment_bytes_stay_behind_but_their_description_travels() -> None:
    attachment = warehouse.canonical_contracts()["attachment"]
    _, columns, _ = _parsed_columns(warehouse.create_table_sql(attachment))
    assert "ATTACHMENT_BLOB" not in columns
    assert {"ATTACHMENT_NAME", "SIZE_BYTES", "CONTENT_TYPE", "SHA256"} <= set(columns)
    assert attachment.skipped_columns() == ("attachment_blob",)
    _, with_bytes, _ = _parsed_columns(warehouse.create_table_sql(attachment, copy_binary=True))
    assert with_bytes["ATTACHMENT_BLOB"][0] == "BINARY"


def test_migration_tables_come_from_their_postgres_ddl() -> None:
    contracts = warehouse.migration_contracts()
    assert set(contracts) == {"id_map", "reconciliation", "reconciliation_mismatch", "proof", "ledger"}
    assert contracts["proof"].primary_key == ("target_site", "project_key")
    # The id map belongs to a qTest site: its rows are keyed by site too.
    assert contracts["id_map"].primary_key == ("target_site", "project_key", "object_type", "source_key")
    _, columns, primary_key = _parsed_columns(warehouse.create_table_sql(contracts["id_map"]))
    assert columns["DETAIL"][0] == "VARIANT"
    assert columns["UPDATED_AT"][0] == _normalise("TIMESTAMP_NTZ")
    assert columns["QTEST_ID"] == ("DECIMAL(38, 0)", False)
    assert primary_key == ["TARGET_SITE", "PROJECT_KEY", "OBJECT_TYPE", "SOURCE_KEY"]
    # No primary key: the checksum covers every plain column.
    assert contracts["reconciliation_mismatch"].checksum_key == (
        "target_site", "project_key", "object_type", "source_key", "field", "expected", "actual",
    )  # fmt: skip


def test_the_postgres_select_sends_utc_and_json_text() -> None:
    id_map = warehouse.migration_contracts()["id_map"]
    select = warehouse.postgres_select_sql(id_map)
    assert "(\"updated_at\" at time zone 'UTC')" in select
    assert '"detail"::text' in select
    assert select.endswith('where "project_key" = %s')
    insert = warehouse.insert_from_load_sql(id_map, "SHOP")
    assert 'PARSE_JSON("DETAIL")' in insert
    assert '"ID_MAP__ZQ_LOAD_SHOP"' in insert


def test_the_checksum_is_the_same_text_on_both_sides_but_for_quoting() -> None:
    contract = warehouse.canonical_contracts()["user_ref"]
    postgres = warehouse.checksum_sql(contract, dialect="postgres")
    snowflake = warehouse.checksum_sql(contract, dialect="snowflake")
    assert postgres.replace('"canonical".', "").upper() == snowflake.upper()
    for function in ("MD5(", "SUBSTR(", "POSITION(", "COALESCE(", "DECIMAL(38,0)"):
        assert function in snowflake
    with pytest.raises(ValueError):
        warehouse.checksum_sql(contract, dialect="oracle")


def _reference_checksum(keys: list[tuple[object, ...]]) -> int:
    return sum(
        int(hashlib.md5("|".join("" if v is None else str(v) for v in key).encode()).hexdigest()[:12], 16)
        for key in keys
    )


def test_the_checksum_sql_computes_the_documented_number_on_the_emulation(tmp_path) -> None:
    """Sum of the first 12 hex digits of md5(key columns joined by '|'), as Python computes it."""
    contract = warehouse.TableContract(
        "keyed",
        "canonical",
        (
            warehouse.Column("object_type", "varchar", True),
            warehouse.Column("object_id", "bigint", True),
            warehouse.Column("note", "text"),
            warehouse.Column("project_key", "varchar", True),
        ),
        ("object_type", "object_id"),
    )
    rows = [("TEST_CASE", 10 + i, None, "SHOP") for i in range(500)] + [("FOLDER", 7, "x", "PAY")]
    with warehouse.embedded_snowflake(tmp_path):
        conn = snowflake.connector.connect(database="ZQ_UNIT", schema="CHECKS")
        cursor = conn.cursor()
        cursor.execute(warehouse.create_table_sql(contract))
        cursor.executemany('INSERT INTO "KEYED" VALUES (%s, %s, %s, %s)', rows)
        shop = warehouse.snowflake_tally(conn, contract, "SHOP")
        assert shop == warehouse.Tally(500, _reference_checksum([r[:2] for r in rows if r[3] == "SHOP"]))
        assert warehouse.snowflake_tally(conn, contract, "NONE") == warehouse.Tally(0, 0)
        conn.close()


def test_postgres_csv_becomes_typed_frames_with_nulls_and_empty_strings_apart() -> None:
    """What COPY ... TO STDOUT (FORMAT csv) writes, as read_csv_frames hands it to write_pandas."""
    contract = warehouse.migration_contracts()["id_map"]
    columns = contract.copied_columns()
    csv = (
        b'https://a.qtestnet.com,SHOP,test_case,SHOP-T1,12,,done,2024-05-01 12:30:15.123456,,"{""a"": 1}",""\n'
        b'https://a.qtestnet.com,SHOP,module,SHOP-F1,,h,pending,2024-05-01 12:30:15,3,{},"two\nlines, ""quoted"""\n'
        b"https://a.qtestnet.com,SHOP,module,SHOP-F2,9007199254740993,,done,1999-12-31 23:59:59,,{},\n"
    )
    frames = list(warehouse.read_csv_frames(io.BytesIO(csv), columns, chunk_rows=2))
    assert [len(frame) for frame in frames] == [2, 1]
    frame = pd.concat(frames, ignore_index=True)
    assert list(frame.columns) == [c.name.upper() for c in columns]
    assert frame["QTEST_ID"].tolist()[0] == 12 and frame["QTEST_ID"].isna().tolist() == [False, True, False]
    assert frame["QTEST_ID"].tolist()[2] == 9007199254740993  # exact: not through a float
    assert frame["UPDATED_AT"].tolist()[0].to_pydatetime() == datetime(2024, 5, 1, 12, 30, 15, 123456)
    assert frame["UPDATED_AT"].tolist()[0].tzinfo is None
    assert frame["DETAIL"].tolist() == ['{"a": 1}', "{}", "{}"]
    # An empty string stays empty, NULL stays NULL, and quotes and newlines survive.
    assert frame["ERROR"].tolist()[0] == ""
    assert frame["ERROR"].tolist()[1] == 'two\nlines, "quoted"'
    assert frame["ERROR"].isna().tolist() == [False, False, True]
    assert frame["PAYLOAD_HASH"].isna().tolist() == [True, False, True]


def test_a_project_without_rows_gives_no_frames() -> None:
    """COPY of zero rows writes nothing at all (an all-equal reconciliation has no mismatch rows)."""
    columns = warehouse.migration_contracts()["id_map"].copied_columns()
    assert list(warehouse.read_csv_frames(io.BytesIO(b""), columns)) == []


def test_attachment_bytes_travel_as_hex_when_asked() -> None:
    attachment = warehouse.canonical_contracts()["attachment"]
    columns = attachment.copied_columns(copy_binary=True)
    values = {c.name: "" for c in columns}
    values.update(attachment_id="1", project_key="SHOP", attachment_blob="\\x00ff10")
    csv = ",".join(values[c.name] for c in columns).encode() + b"\n"
    (frame,) = warehouse.read_csv_frames(io.BytesIO(csv), columns)
    assert frame["ATTACHMENT_BLOB"].tolist() == [b"\x00\xff\x10"]


def test_a_contract_without_project_key_cannot_be_copied() -> None:
    with pytest.raises(warehouse.ContractError, match="project_key"):
        warehouse.TableContract("t", "s", (warehouse.Column("id", "bigint"),), ("id",))
