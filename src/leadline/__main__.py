from leadline.cli.main import main

raise SystemExit(main())
