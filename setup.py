"""robomem: memory middleware for household robots on ROS 2 (pip-installable; ament_python-style)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
REQUIREMENTS = [
    line.split("#")[0].strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.split("#")[0].strip() and not line.startswith(("pytest", "ruff"))
]

setup(
    name="robomem",
    version="0.1.0",
    description="Spatio-temporal scene-graph memory for household robots (ROS 2)",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[
        *find_packages(include=["robomem", "robomem.*"]),
        "robomem_sim",
        *(f"robomem_sim.{p}" for p in find_packages("sim")),
    ],
    package_dir={"robomem_sim": "sim"},
    package_data={"robomem": ["data/*.jsonl"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/robomem"]),
        ("share/robomem", ["package.xml"]),
        ("share/robomem/config", [str(p) for p in sorted(Path("config").glob("*.yaml"))]),
    ],
    install_requires=REQUIREMENTS,
    extras_require={"ai2thor": ["ai2thor==5.0.0"]},  # a live AI2-THOR Controller (downloads its Unity build)
    entry_points={"console_scripts": ["robomem = robomem.cli:main"]},
)
