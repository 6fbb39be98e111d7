"""HTTP routes, one module per concern; handlers stay thin and call plain functions."""
