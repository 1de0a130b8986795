"""A stand-in `sw_vers` of macOS 14.5 (Sonoma)."""
import sys

answers = {"-productName": "macOS", "-productVersion": "14.5", "-buildVersion": "23F79"}
if sys.argv[1:]:
    print(answers.get(sys.argv[1], ""))
else:
    print("ProductName:\t\tmacOS\nProductVersion:\t\t14.5\nBuildVersion:\t\t23F79")
