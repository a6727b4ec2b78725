"""The primary file of a ``python_wheel_task``: the runner copies it into the task's work directory and
runs ``spark-submit wheel_task.py <package_name> <entry_point> <parameters...>`` with the task's environment.

As Databricks documents it: the entry point is looked up by name in the package's metadata (the
entry points of its distribution, e.g. ``[project.scripts]``); if it is not there, the function
``<package_name>.<entry_point>()`` is called. The job sees ``sys.argv == [package_name, *parameters]``.
"""

import importlib
import sys
from importlib import metadata


def entry_point(package: str, name: str):
    try:
        found = [ep for ep in metadata.distribution(package).entry_points if ep.name == name]
    except metadata.PackageNotFoundError:
        found = []
    return found[0].load() if found else getattr(importlib.import_module(package), name)


if __name__ == "__main__":
    package, name, *parameters = sys.argv[1:]
    main = entry_point(package, name)
    sys.argv = [package, *parameters]
    main()
