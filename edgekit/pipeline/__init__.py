"""The deploy pipeline: model -> export -> quantize -> measure -> report, as named, timed, cached steps."""
