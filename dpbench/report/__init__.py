"""Tables and figures from run directories (matplotlib, headless Agg backend)."""
