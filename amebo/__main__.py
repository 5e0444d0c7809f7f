from amebo.cli import main

raise SystemExit(main())
