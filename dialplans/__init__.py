"""Dialplan definitions (YAML) and the jinja2 templates of the Asterisk configs, shipped as package data."""
