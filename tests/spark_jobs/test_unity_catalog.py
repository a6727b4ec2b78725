"""The Unity Catalog governance DDL (lakehouse_jobs.unity_catalog) read back with a real SQL parser, sqlglot's
Databricks dialect, and checked against the table declarations (lakehouse_jobs.tables) it is generated from.

sqlglot 30.30.0 parses CREATE FUNCTION, CREATE VIEW and most GRANTs fully, but not ``ALTER TABLE ... ALTER
COLUMN ... SET MASK``, ``... SET ROW FILTER``, ``... ALTER COLUMN ... SET TAGS`` nor ``GRANT ... ON CATALOG``:
it falls back to an opaque ``exp.Command``. Those four shapes are checked token by token (sqlglot's Databricks
tokenizer) against the grammar of the Databricks SQL reference (unity_catalog's docstring names the pages);
every other statement must parse fully, and not as a Command.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import sqlglot
from sqlglot import ErrorLevel, exp
from sqlglot.dialects.databricks import Databricks
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from lakehouse_jobs import unity_catalog as uc
from lakehouse_jobs.unity_catalog import GOVERNED_TABLES as TABLES
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CATALOG, SCHEMA = "prod_cat", "gov_schema"  # not the defaults, so that nothing hard-coded passes
DDL = uc.governance_ddl(CATALOG, SCHEMA)


# ------------------------------------------------------------------- the matcher of the four shapes


class NoMatch(Exception):
    """The statement is not of the shape tried."""


class _Tokens:
    def __init__(self, sql: str):
        self.tokens: list[Token] = Databricks().tokenize(sql)
        self.i = 0

    def _next(self, what: str) -> Token:
        if self.i >= len(self.tokens):
            raise NoMatch(f"expected {what}, found the end")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def word(self, what: str) -> str:
        """The next token as an unquoted word, upper case (a string or a backticked identifier is no word)."""
        token = self._next(what)
        if token.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
            raise NoMatch(f"expected {what}, found {token.text!r}")
        return token.text.upper()

    def keywords(self, *words: str) -> None:
        for word in words:
            if (found := self.word(word)) != word:
                raise NoMatch(f"expected {word}, found {found!r}")

    def punct(self, token_type: TokenType) -> None:
        token = self._next(token_type.name)
        if token.token_type != token_type:
            raise NoMatch(f"expected {token_type.name}, found {token.text!r}")

    def at(self, token_type: TokenType) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i].token_type == token_type

    def identifier(self) -> str:
        token = self._next("an identifier")
        if token.token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            raise NoMatch(f"expected an identifier, found {token.text!r}")
        return token.text

    def name(self, parts: int) -> tuple[str, ...]:
        """A dotted name of exactly `parts` identifiers."""
        found = [self.identifier()]
        while self.at(TokenType.DOT):
            self.i += 1
            found.append(self.identifier())
        if len(found) != parts:
            raise NoMatch(f"expected a {parts}-part name, found {'.'.join(found)!r}")
        return tuple(found)

    def string(self) -> str:
        token = self._next("a string literal")
        if token.token_type != TokenType.STRING:
            raise NoMatch(f"expected a string literal, found {token.text!r}")
        return token.text

    def end(self) -> None:
        if self.i != len(self.tokens):
            raise NoMatch(f"unexpected {self.tokens[self.i].text!r} after the statement")


@dataclass
class Shape:
    kind: str  # "mask", "row_filter", "tags", "grant_catalog"
    table: tuple[str, ...] = ()
    column: str = ""
    function: tuple[str, ...] = ()
    columns: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    catalog: str = ""
    principal: str = ""


def match_alter_table(sql: str) -> Shape:
    """``ALTER TABLE c.s.t`` then exactly one of (sql-ref-syntax-ddl-alter-table-manage-column, -row-filter):
    ``ALTER COLUMN col SET MASK c.s.f``; ``ALTER COLUMN col SET TAGS ( 'k' = 'v' [, ...] )``;
    ``SET ROW FILTER c.s.f ON ( [ col [, ...] ] )``."""
    t = _Tokens(sql)
    t.keywords("ALTER", "TABLE")
    table = t.name(3)
    if t.at(TokenType.ALTER):
        t.keywords("ALTER", "COLUMN")
        column = t.identifier()
        t.keywords("SET")
        word = t.word("MASK or TAGS")
        if word == "MASK":
            shape = Shape("mask", table, column, function=t.name(3))
        elif word == "TAGS":
            tags = {}
            t.punct(TokenType.L_PAREN)
            while True:
                key = t.string()
                t.punct(TokenType.EQ)
                tags[key] = t.string()
                if not t.at(TokenType.COMMA):
                    break
                t.punct(TokenType.COMMA)
            t.punct(TokenType.R_PAREN)
            shape = Shape("tags", table, column, tags=tags)
        else:
            raise NoMatch(f"expected MASK or TAGS, found {word!r}")
    else:
        t.keywords("SET", "ROW", "FILTER")
        function = t.name(3)
        t.keywords("ON")
        t.punct(TokenType.L_PAREN)
        columns = []
        while not t.at(TokenType.R_PAREN):
            if columns:
                t.punct(TokenType.COMMA)
            columns.append(t.identifier())
        t.punct(TokenType.R_PAREN)
        shape = Shape("row_filter", table, function=function, columns=columns)
    t.end()
    return shape


def match_grant_on_catalog(sql: str) -> Shape:
    """``GRANT USE CATALOG ON CATALOG c TO `principal``` (security-grant)."""
    t = _Tokens(sql)
    t.keywords("GRANT", "USE", "CATALOG", "ON", "CATALOG")
    (catalog,) = t.name(1)
    t.keywords("TO")
    principal = t.identifier()
    t.end()
    return Shape("grant_catalog", catalog=catalog, principal=principal)


def check(sql: str) -> Shape | exp.Expr:
    """The statement as a matched Shape (ALTER TABLE, GRANT ... ON CATALOG) or as sqlglot's full parse
    tree (everything else, which must not fall back to a Command). Raises NoMatch or a sqlglot error."""
    head = [tok.text.upper() for tok in Databricks().tokenize(sql)[:5]]
    if head[:2] == ["ALTER", "TABLE"]:
        return match_alter_table(sql)
    if head[:1] == ["GRANT"] and "CATALOG" in head[1:]:
        return match_grant_on_catalog(sql)
    tree = sqlglot.parse_one(sql, read="databricks", error_level=ErrorLevel.RAISE)
    assert not isinstance(tree, exp.Command), f"sqlglot did not parse it: {sql}"
    return tree


def _check_all() -> list[Shape | exp.Expr | Exception]:
    """check() of every statement, a failure kept as its exception (for the first test to report)."""
    results: list[Shape | exp.Expr | Exception] = []
    for statement in DDL:
        try:
            results.append(check(statement))
        except (NoMatch, SqlglotError, AssertionError) as e:
            results.append(e)
    return results


CHECKED = _check_all()
SHAPES = [c for c in CHECKED if isinstance(c, Shape)]
TREES = [c for c in CHECKED if isinstance(c, exp.Expr)]
MASKS = {(s.table, s.column): s.function for s in SHAPES if s.kind == "mask"}
TAGS = {(s.table, s.column): s.tags for s in SHAPES if s.kind == "tags"}
FUNCTIONS = {
    (t.this.this.catalog, t.this.this.db, t.this.this.name): t
    for t in TREES if isinstance(t, exp.Create) and t.kind == "FUNCTION"
}
VIEWS = {t.this.name: t for t in TREES if isinstance(t, exp.Create) and t.kind == "VIEW"}


def qualified(name: str) -> tuple[str, str, str]:
    return CATALOG, SCHEMA, name


# ----------------------------------------------------------------------------------- parsing


def test_every_statement_parses_fully_or_matches_its_documented_shape():
    failed = {statement: repr(c) for statement, c in zip(DDL, CHECKED) if isinstance(c, Exception)}
    assert not failed
    assert len(DDL) == len(SHAPES) + len(TREES) > 0
    kinds = {s.kind for s in SHAPES}
    assert kinds == {"mask", "row_filter", "tags", "grant_catalog"}
    # the statements sqlglot parses fully: the functions, the views and the grants on schema and tables
    assert {type(t) for t in TREES} == {exp.Create, exp.Grant}
    assert len(FUNCTIONS) == 3 and set(VIEWS) == set(uc.PII_VIEWS.values())
    for statement in DDL:
        assert ";" not in statement, "the CLI separates statements with ';'"


def test_sqlglot_cannot_parse_the_matched_shapes():
    """Why the matcher exists: if a sqlglot upgrade parses these, check them with the parser instead."""
    for statement, checked in zip(DDL, CHECKED):
        if isinstance(checked, Shape):
            assert isinstance(sqlglot.parse_one(statement, read="databricks"), exp.Command), statement


WELL_FORMED = [
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET MASK c.s.f",
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAGS ('pii' = 'quasi')",
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAGS ('pii' = 'quasi', 'owner' = 'crm')",
    "ALTER TABLE c.s.t SET ROW FILTER c.s.f ON ()",
    "ALTER TABLE c.s.t SET ROW FILTER c.s.f ON (a, b)",
    "GRANT USE CATALOG ON CATALOG c TO `g`",
]


@pytest.mark.parametrize("statement", WELL_FORMED)
def test_the_matcher_accepts_the_documented_shapes(statement):
    assert isinstance(check(statement), Shape)


@pytest.mark.parametrize("statement", [
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET c.s.f",  # no MASK keyword
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET 'MASK' c.s.f",  # MASK as a string
    "ALTER TABLE s.t ALTER COLUMN x_enc SET MASK c.s.f",  # two-level table
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET MASK s.f",  # two-level function
    "ALTER TABLE x.c.s.t ALTER COLUMN x_enc SET MASK c.s.f",  # four-level table
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET MASK c.s.f USING COLUMNS (y)",  # more than we generate
    "ALTER TABLE c.s.t ALTER COLUMN x_enc SET MASK c.s.f; DROP TABLE c.s.t",  # a second statement
    "ALTER TABLE c.s.t ALTER x_enc SET MASK c.s.f",  # no COLUMN keyword
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAGS (pii = quasi)",  # identifiers, not string literals
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAGS ('pii' 'quasi')",  # no '='
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAGS ('pii' = 'quasi'",  # unclosed
    "ALTER TABLE c.s.t ALTER COLUMN city SET TAG ('pii' = 'quasi')",  # TAG, not TAGS
    "ALTER TABLE c.s.t SET ROW FILTER c.s.f",  # no ON ( )
    "ALTER TABLE c.s.t SET FILTER c.s.f ON ()",  # no ROW
    "ALTER TABLE c.s.t SET ROW FILTER c.s.f ON (a b)",  # no comma
    "GRANT USE CATALOG ON CATALOG c.s TO `g`",  # a catalog is one name
    "GRANT USE CATALOG ON c TO `g`",  # no securable kind
])
def test_the_matcher_rejects_malformed_statements(statement):
    with pytest.raises(NoMatch):
        check(statement)


# ---------------------------------------------------------------------------------- coverage


def test_every_direct_identifier_is_masked_and_tagged_direct():
    direct = [(t.name, f.name) for t in TABLES.values() for f in t.fields if f.pii == "direct"]
    assert len(direct) >= 15  # six in member, six in dim_member, five in member_quarantine
    for table, column in direct:
        key = (qualified(table), column)
        assert MASKS.get(key) == qualified(uc.MASK_DIRECT), f"{table}.{column} has no direct mask"
        assert TAGS.get(key) == {"pii": "direct"}, f"{table}.{column} is not tagged pii=direct"


def test_every_quasi_identifier_is_tagged_quasi_and_nothing_else_is_tagged():
    expected = {(qualified(t.name), f.name): {"pii": f.pii}
                for t in TABLES.values() for f in t.fields if f.pii in ("direct", "quasi")}
    assert any(v == {"pii": "quasi"} for v in expected.values())
    assert TAGS == expected


def test_masks_are_on_declared_columns_with_functions_the_ddl_creates():
    declared = {(qualified(t.name), f.name): f for t in TABLES.values() for f in t.fields}
    for (table, column), function in MASKS.items():
        assert (table, column) in declared, f"mask on an undeclared column {table}.{column}"
        assert function in FUNCTIONS, f"{function} is not created"
        f = declared[(table, column)]
        assert f.pii != "none", f"{table}.{column} is not personal data"
        (param,) = FUNCTIONS[function].this.expressions
        assert param.args["kind"].sql("databricks") == f.type, f"{function} takes another type than {column}"
    # quasi dates are generalised: every one of them has the quasi date mask
    for key, f in declared.items():
        if f.pii == "quasi" and f.type == "DATE":
            assert MASKS.get(key) == qualified(uc.MASK_QUASI_DATE), key


def test_every_name_is_three_level():
    for shape in SHAPES:
        if shape.kind == "grant_catalog":
            assert shape.catalog == CATALOG
            continue
        assert shape.table[:2] == (CATALOG, SCHEMA)
        if shape.function:
            assert shape.function[:2] == (CATALOG, SCHEMA)
    for tree in TREES:
        if isinstance(tree, exp.Grant):
            kind, securable = tree.args["kind"], tree.args["securable"]
            assert kind in ("SCHEMA", "TABLE"), tree.sql("databricks")
            if kind == "SCHEMA":  # a schema's own name is catalog.schema
                assert (securable.db, securable.name) == (CATALOG, SCHEMA)
                continue
        tables = list(tree.find_all(exp.Table))
        assert tables, tree.sql("databricks")
        for table in tables:
            assert (table.catalog, table.db) == (CATALOG, SCHEMA), f"{table.sql('databricks')} in {tree.sql()}"


def test_decrypting_views_cover_every_direct_column_of_member_and_dim_member():
    assert set(uc.PII_VIEWS) == {"member", "dim_member"}
    for table_name, view_name in uc.PII_VIEWS.items():
        view = VIEWS[view_name]
        select = view.expression
        (source,) = [select.args["from_"].this]
        assert (source.catalog, source.db, source.name) == qualified(table_name)
        outputs = {p.alias_or_name: p for p in select.expressions}
        spec = TABLES[table_name]
        for f in spec.fields:
            if f.pii != "direct":
                assert isinstance(outputs[f.name], exp.Column), f"{view_name}.{f.name}"
                continue
            plain = f.name.removesuffix("_enc")
            assert f.name not in outputs, f"{view_name} shows the ciphertext {f.name}"
            cast = outputs[plain].this
            assert isinstance(cast, exp.Cast) and cast.to.is_type("string"), f"{view_name}.{plain}"
            decrypt = cast.this
            assert isinstance(decrypt, exp.Anonymous) and decrypt.name.lower() == "try_aes_decrypt"
            ciphertext, key, mode = decrypt.expressions
            assert ciphertext == exp.column(f.name)
            assert mode == exp.Literal.string("GCM")
            # the secret holds base64 text (PiiKeys.from_env decodes the same value): the key is its bytes
            assert isinstance(key, exp.FromBase64) and isinstance(key.this, exp.Secret)
            assert (key.this.this, key.this.expression) == (
                exp.Literal.string(uc.SECRET_SCOPE), exp.Literal.string(uc.ENCRYPTION_KEY_SECRET))
        assert len(outputs) == len(spec.fields)


def test_the_ddl_reads_the_key_the_jobs_are_given():
    """The view's secret is the one include/databricks_runs.py hands to the jobs' clusters."""
    from include.databricks_runs import PII_SECRETS
    from include.settings import DatabricksSettings

    assert PII_SECRETS["LAKEHOUSE_PII_ENCRYPTION_KEY"] == uc.ENCRYPTION_KEY_SECRET
    assert DatabricksSettings.from_env({}).secret_scope == uc.SECRET_SCOPE
    other = uc.governance_ddl(CATALOG, SCHEMA, secret_scope="pii.prod")
    assert "secret('pii.prod', 'pii_encryption_key')" in next(s for s in other if "VIEW" in s)


# --------------------------------------------------------------------------- the function bodies


def groups_of(condition: exp.Expr) -> set[str]:
    """The groups of an OR of is_account_group_member('<group>') calls; fails on anything else (an AND, a
    NOT, another function), which would change what the groups grant."""
    if isinstance(condition, exp.Or):
        return groups_of(condition.this) | groups_of(condition.expression)
    assert isinstance(condition, exp.Anonymous) and condition.name.lower() == "is_account_group_member", \
        condition.sql("databricks")
    (group,) = condition.expressions
    assert group.is_string
    return {group.name}


def case_of(function: tuple[str, ...]) -> tuple[str, exp.If, exp.Expr]:
    """(parameter, the single WHEN branch, the ELSE) of a one-parameter mask function."""
    tree = FUNCTIONS[function]
    (param,) = tree.this.expressions
    case = tree.expression.this
    assert isinstance(case, exp.Case), tree.sql("databricks")
    (when,) = case.args["ifs"]
    return param.name, when, case.args.get("default")


def test_direct_masks_return_null_to_everyone_but_the_authorised_groups():
    used = {MASKS[k] for k in MASKS if TAGS[k] == {"pii": "direct"}}
    assert used == {qualified(uc.MASK_DIRECT)}
    for function in used:
        param, when, default = case_of(function)
        assert groups_of(when.this) == {uc.ENGINEERS, uc.PII_READERS}
        assert when.args["true"] == exp.column(param)
        assert isinstance(default, exp.Null), f"{function} gives non-members {default}"


def test_quasi_date_mask_gives_others_the_month_only():
    param, when, default = case_of(qualified(uc.MASK_QUASI_DATE))
    assert groups_of(when.this) == {uc.ENGINEERS, uc.PII_READERS, uc.STEWARDS}
    assert uc.ANALYSTS not in groups_of(when.this)
    assert when.args["true"] == exp.column(param)
    assert isinstance(default, exp.DateTrunc) and default.this == exp.column(param)
    assert default.args["unit"] == exp.Literal.string("MM")


def test_quarantine_rows_are_for_stewards_and_the_jobs_only():
    (row_filter,) = [s for s in SHAPES if s.kind == "row_filter"]
    assert row_filter.table == qualified("member_quarantine") and row_filter.columns == []
    tree = FUNCTIONS[row_filter.function]
    assert not tree.this.expressions  # no parameter: ON () passes no column
    assert groups_of(tree.expression.this) == {uc.STEWARDS, uc.ENGINEERS}


def test_grants():
    grants = {}
    for tree in TREES:
        if isinstance(tree, exp.Grant):
            (principal,) = tree.args["principals"]
            privileges = {p.this.name for p in tree.args["privileges"]}
            grants.setdefault(principal.this.name, {})[tree.args["securable"].name] = privileges
    for shape in SHAPES:
        if shape.kind == "grant_catalog":
            grants.setdefault(shape.principal, {})[shape.catalog] = {"USE CATALOG"}
    assert set(grants) == set(uc.GROUPS)
    for group in uc.GROUPS:
        assert grants[group][CATALOG] == {"USE CATALOG"} and grants[group][SCHEMA] == {"USE SCHEMA"}
    assert {t: p for t, p in grants[uc.ENGINEERS].items() if t in TABLES} == {
        t: {"SELECT", "MODIFY"} for t in TABLES}
    readable = {g: {t for t, p in grants[g].items() if "SELECT" in p} for g in uc.GROUPS}
    invoice_star = {"fact_invoice", "fact_invoice_line", "dim_date", "dim_product", "dim_payment_method",
                    "dim_invoice_terms", "dim_seller", "dim_party_address", "dim_currency"}
    assert readable[uc.ANALYSTS] == {"member", "dim_member", "member_batches"} | invoice_star
    assert readable[uc.PII_READERS] == {"member_pii", "dim_member_pii"}
    assert readable[uc.STEWARDS] == {"member_quarantine", "member_batches", "erasure_requests",
                                     "invoice_quarantine", "invoice_ledger"}
    assert not any("MODIFY" in p for g in uc.GROUPS if g != uc.ENGINEERS for p in grants[g].values())


# ------------------------------------------------------------------------- on a real Spark engine


def test_the_decrypting_view_decrypts_what_the_jobs_encrypt(spark):
    """The view's expression, run by Spark (secret() replaced by the key's base64 text, as the scope holds
    it), decrypts lakehouse_jobs.pii.encrypt's ciphertext; so does the quasi mask generalise a date."""
    from pyspark.sql import functions as F

    from lakehouse_jobs import pii

    keys = pii.PiiKeys(hmac_key=secrets.token_bytes(32), encryption_key=secrets.token_bytes(32))
    spec = TABLES["member"]
    direct = [f.name.removesuffix("_enc") for f in spec.fields if f.pii == "direct"]
    values = {c: f"{c} of Zoë O'Brien" for c in direct}
    row = spark.createDataFrame([values])
    encrypted = pii.drop_keys(pii.with_keys(spark, row, keys).select(
        *[pii.encrypt(c).alias(f"{c}_enc") for c in direct]))
    others = [F.lit(None).cast("string").alias(f.name) for f in spec.fields if f.pii != "direct"]
    encrypted.select("*", *others).createOrReplaceTempView("member_rows")

    select = VIEWS["member_pii"].expression.copy()
    select.args["from_"].set("this", exp.to_table("member_rows"))
    for secret in list(select.find_all(exp.Secret)):
        secret.replace(exp.Literal.string(base64.b64encode(keys.encryption_key).decode()))
    (decrypted,) = spark.sql(select.sql("spark")).collect()
    assert {c: decrypted[c] for c in direct} == values

    mask = FUNCTIONS[qualified(uc.MASK_QUASI_DATE)].expression.this.copy()
    for call in list(mask.find_all(exp.Anonymous)):
        call.replace(exp.false())  # a reader in none of the groups
    generalised = spark.sql(f"SELECT {mask.sql('spark')} AS m FROM VALUES (DATE'2024-02-29') AS v(d)").first()
    assert generalised["m"] == datetime.date(2024, 2, 1)


# ------------------------------------------------------------------------------- names and CLI


@pytest.mark.parametrize("name", [
    "", "main.lakehouse", "ma-in", "`main`", "main;DROP SCHEMA x", "1main", "main lakehouse", "main\n",
    "mäin", "x" * 256, "'main'", None,
])
def test_names_that_are_not_plain_identifiers_are_refused(name):
    with pytest.raises(ValueError, match="not a plain identifier"):
        uc.governance_ddl(name, "lakehouse")
    with pytest.raises(ValueError, match="not a plain identifier"):
        uc.governance_ddl("main", name)


def test_a_secret_scope_that_could_leave_its_literal_is_refused():
    with pytest.raises(ValueError, match="secret scope"):
        uc.governance_ddl("main", "lakehouse", secret_scope="x') , secret('other")


@pytest.mark.parametrize("name", ["main", "_x", "Lake_House2", "x" * 255])
def test_plain_identifiers_are_accepted(name):
    assert uc.governance_ddl(name, name)


def test_cli_prints_the_statements_separated_by_semicolons(capsys):
    assert uc.main(["--catalog", CATALOG, "--schema", SCHEMA]) == 0
    out = capsys.readouterr().out
    assert out.endswith(";\n")
    assert out.split(";\n")[:-1] == DDL


def test_cli_as_a_module_without_spark():
    """`python -m lakehouse_jobs.unity_catalog`, in a fresh interpreter, which must not import pyspark."""
    check_imports = "import sys, lakehouse_jobs.unity_catalog; assert 'pyspark' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", check_imports], cwd=REPO_ROOT).returncode == 0

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lakehouse_jobs.unity_catalog", *args], cwd=REPO_ROOT,
                              capture_output=True, text=True)

    done = cli("--catalog", "main", "--schema", "lakehouse")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(";\n")[:-1] == uc.governance_ddl("main", "lakehouse")
    bad = cli("--catalog", "main;", "--schema", "lakehouse")
    assert bad.returncode == 2 and "not a plain identifier" in bad.stderr and not bad.stdout
