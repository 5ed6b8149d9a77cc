from shoplink.cli import main

raise SystemExit(main())
