"""The reports' HTML and CSS, shipped as package data (`idia.templates`); rendered by `idia.compliance.report`
only, never a user's file."""
