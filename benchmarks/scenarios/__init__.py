"""One module per scenario, each with ``run(bench) -> ScenarioResult``."""
