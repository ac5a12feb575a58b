from netconsole.cli import main

main()
