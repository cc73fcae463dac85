from prefect_ft.demo.loopback import main

main()
