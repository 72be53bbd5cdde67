"""Checks lab's JUnit XML the way CI does: schema-valid, and read by a real
consumer (junitparser). Prints one JSON object the Rust test compares.

usage: python3 junit_consumer.py REPORT.xml SCHEMA.xsd
"""
import json
import sys

import junitparser
import xmlschema

report, schema = sys.argv[1], sys.argv[2]
xmlschema.XMLSchema(schema).validate(report)

xml = junitparser.JUnitXml.fromfile(report)
suites = []
for suite in xml:
    cases = []
    for case in suite:
        failures = [r for r in case.result if isinstance(r, junitparser.Failure)]
        cases.append({
            "name": case.name,
            "classname": case.classname,
            "passed": case.is_passed,
            "message": failures[0].message if failures else None,
            "type": failures[0].type if failures else None,
        })
    suites.append({
        "name": suite.name,
        "tests": suite.tests,
        "failures": suite.failures,
        "cases": cases,
    })
print(json.dumps({"suites": suites}))
