"""Screenshots of the running stack for the docs (docs/images/*.png): the DAG list, the graph of the latest
successful member_pipeline run that submitted a Databricks run and of the latest one that skipped it (an
unchanged day), the latest successful invoice_pipeline run in the Airflow web UI, and the local Databricks
runner's page of that member run's Spark job.

    make screenshots        # = dev/stack.sh run python -m dev.screenshots (after `make demo`)

An unchanged day is a member_pipeline run over a source nothing changed in since the last one: after `make
demo`, `dev/stack.sh run airflow dags trigger member_pipeline` gives one.

Headless Chromium and ChromeDriver from Debian's packages (chromium, chromium-driver: the make target
installs them), driven by Selenium. It logs in as the stack's admin the way the UI does: a JWT from
``/auth/token`` in the ``_token`` cookie. Raises SystemExit naming what is missing (no successful run,
no browser).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from dev.airflow_api import AirflowApi

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
WINDOW = (1440, 1100)


def latest_success(api: AirflowApi, dag_id: str, merge: str | None = None) -> str:
    """The newest successful run of `dag_id`; with `merge`, the newest whose merge_members task ended in that
    state ("success": a Databricks run was submitted; "skipped": an unchanged day)."""
    runs = api.get(f"dags/{dag_id}/dagRuns?state=success&order_by=-run_after&limit=20").json()["dag_runs"]
    for run in runs:
        task = f"dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/merge_members"
        if merge is None or api.get(task).json()["state"] == merge:
            return run["dag_run_id"]
    what = {"skipped": "unchanged-day (trigger one after `make demo`: dev/stack.sh run airflow dags trigger "
                       "member_pipeline)"}.get(merge or "", "")
    raise SystemExit(f"no successful {what} {dag_id} run to show: run `make demo` first")


def browser() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def shoot(page: webdriver.Chrome, url: str, name: str, wait_for: str, click: tuple[str, ...] = (),
          settle: float = 2.0) -> Path:
    """Open `url`, wait until the text `wait_for` is on the page, press the buttons labelled `click` (their
    aria-label), wait `settle` s for layout and animations, save docs/images/<name>.png."""
    page.get(url)
    wait = WebDriverWait(page, 60)
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), wait_for))
    for label in click:
        button = (By.CSS_SELECTOR, f'button[aria-label="{label}"]')
        wait.until(expected_conditions.element_to_be_clickable(button)).click()
        time.sleep(settle)
    time.sleep(settle)
    path = IMAGES / f"{name}.png"
    page.save_screenshot(str(path))
    print(f"==> {path.relative_to(IMAGES.parents[1])}: {url}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    api = AirflowApi()
    member_run, invoice_run = latest_success(api, "member_pipeline", "success"), latest_success(api, "invoice_pipeline")
    unchanged_run = latest_success(api, "member_pipeline", "skipped")
    run_page = api.get(f"dags/member_pipeline/dagRuns/{member_run}/taskInstances/merge_members/xcomEntries/"
                       "run_page_url").json()["value"].strip('"')
    IMAGES.mkdir(parents=True, exist_ok=True)
    page = browser()
    try:
        page.get(api.base_url + "/auth/login")  # a page of the UI's origin, so the cookie can be set on it
        page.add_cookie({"name": "_token", "value": api.token(), "path": "/"})
        shoot(page, f"{api.base_url}/dags", "airflow-dags", "member_pipeline")
        for dag_id, run_id, name in (("member_pipeline", member_run, "airflow-member_pipeline-run"),
                                     ("member_pipeline", unchanged_run, "airflow-member_pipeline-unchanged-run"),
                                     ("invoice_pipeline", invoice_run, "airflow-invoice_pipeline-run")):
            shoot(page, f"{api.base_url}/dags/{dag_id}/runs/{run_id}", name, run_id, click=("Show Graph (Press g)",))
        shoot(page, run_page, "databricks-run-page", "member_merge")
    finally:
        page.quit()


if __name__ == "__main__":
    main()
