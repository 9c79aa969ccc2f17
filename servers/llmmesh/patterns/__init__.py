"""What every pattern service shares: the inference client, structured output, limits, streams."""
