"""Session tests: pytester sessions of the plugin, with no real provider behind them."""
