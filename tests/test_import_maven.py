"""The Maven CRM sample, end to end with the mapping files in examples/maven-crm/.

The sample is read from ``../shared/data/maven-crm`` beside the checkout when it is there; it
is not shipped (its folder carries no licence). Elsewhere the test writes files of the same
shape and quirks: a misspelt sector, a product named differently in the pipeline, deals with
no account, open deals with no close date or value.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "maven-crm"
STAGES = {"Prospecting": "Lead", "Engaging": "Qualified", "Won": "Won", "Lost": "Lost"}


def _shipped() -> Path | None:
    for parent in (ROOT.parent, ROOT.parent.parent):
        folder = parent / "shared" / "data" / "maven-crm"
        if (folder / "sales_pipeline.csv").is_file():
            return folder
    return None


def _generate(folder: Path) -> Path:
    """Files shaped like the Maven sample, quirks included."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accounts.csv").write_text(
        "account,sector,year_established,revenue,employees,office_location,subsidiary_of\n"
        "Acme Corporation,technolgy,1996,1100.04,2822,United States,\n"
        "Betatech,medical,1986,647.18,1185,Kenya,\n"
        "Cancity,retail,2001,718.62,2448,United States,Acme Corporation\n"
    )
    (folder / "products.csv").write_text(
        "product,series,sales_price\nGTX Basic,GTX,550\nGTX Pro,GTX,4821\nMG Special,MG,55\n"
    )
    (folder / "sales_teams.csv").write_text(
        "sales_agent,manager,regional_office\nAnna Snelling,Dustin Brinkmann,Central\nMoses Frase,Cara Losch,East\n"
    )
    rows = ["opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"]
    agents, products, accounts = (
        ["Anna Snelling", "Moses Frase"],
        ["GTX Basic", "GTXPro", "MG Special"],
        ["Acme Corporation", "Betatech", "Cancity", ""],
    )
    for i in range(120):
        stage = list(STAGES)[i % 4]
        engage = "" if stage == "Prospecting" else f"2016-{1 + i % 12:02d}-{1 + i % 27:02d}"
        close = f"2017-{1 + i % 12:02d}-{1 + i % 27:02d}" if stage in ("Won", "Lost") else ""
        value = str(100 + i) if stage == "Won" else ("0" if stage == "Lost" else "")
        account = "" if stage in ("Prospecting", "Engaging") and i % 3 == 0 else accounts[i % 3]
        rows.append(f"OPP{i:05d},{agents[i % 2]},{products[i % 3]},{account},{stage},{engage},{close},{value}")
    (folder / "sales_pipeline.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(params=["sample", "made"])
def maven(request, tmp_path) -> Path:
    """The real sample where it is (else made files), and always the made files."""
    shipped = _shipped() if request.param == "sample" else None
    return shipped or _generate(tmp_path / "maven-crm")


def test_maven_sample_imports_and_counts_match_the_csvs(crm, maven):
    for entity, file, mapping in [
        ("products", "products.csv", "products.json"),
        ("users", "sales_teams.csv", "users.json"),
        ("companies", "accounts.csv", "companies.json"),
        ("deals", "sales_pipeline.csv", "deals.json"),
    ]:
        report = crm.importer.run(entity, maven / file, mapping=EXAMPLES / mapping)
        assert report.refused == 0, str(report)
    pipeline = pl.read_csv(maven / "sales_pipeline.csv", infer_schema=False)
    assert crm.deals.count() == pipeline.height

    def crm_counts(field: str) -> dict:
        frame = crm.query({"entity": "deals", "group_by": [field], "aggregates": [{"fn": "count", "as": "n"}]})
        return dict(frame.rows())

    def csv_counts(column: str, rename: dict | None = None) -> dict:
        counted = pipeline.group_by(column).len()
        return {(rename or {}).get(k, k): n for k, n in counted.rows()}

    assert crm_counts("stage.name") == csv_counts("deal_stage", STAGES)
    assert crm_counts("owner.full_name") == csv_counts("sales_agent")
    assert crm_counts("company.name") == csv_counts("account")  # no account: no company (None)
    products = crm_counts("product.name")
    assert products == csv_counts("product", {"GTXPro": "GTX Pro"})
    acme = crm.companies.list(name="Acme Corporation")[0]
    assert acme["industry"] == "technology" and acme["custom_fields"]["year_established"] == "1996"
    won = pipeline.filter(pl.col("deal_stage") == "Won")
    total = crm.query(
        {
            "entity": "deals",
            "where": {"combinator": "and", "rules": [{"field": "stage.name", "operator": "=", "value": "Won"}]},
            "aggregates": [{"fn": "sum", "field": "value", "as": "total"}],
        }
    )["total"][0]
    assert int(total) == won["close_value"].cast(pl.Int64).sum()
