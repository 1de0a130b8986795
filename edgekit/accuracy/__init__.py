"""Accuracy against ground truth: SA-1B-layout datasets and the mIoU of point and box prompts."""
