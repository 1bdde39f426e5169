from convolens.cli import app

app()
