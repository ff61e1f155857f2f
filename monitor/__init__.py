"""Stagewatch: monitor package (config, events, engine, sinks, metrics, backtest, CLI)."""
