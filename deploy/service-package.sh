#!/usr/bin/env bash
# Prints the Python package of a service directory name (sla-monitor → tousu_sla).
case "$1" in
  sla-monitor) echo tousu_sla ;;
  *) echo "tousu_${1//-/_}" ;;
esac
