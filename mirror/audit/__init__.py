"""The scheduled re-audit of everything cached: detectors again, content rescans, the internal-name sweep, vulnerabilities, the SBOM."""
