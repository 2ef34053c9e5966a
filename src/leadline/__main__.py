from leadline.cli.main import entry

entry()
