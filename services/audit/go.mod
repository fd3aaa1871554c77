module github.com/loanflow/loanflow/services/audit

go 1.26
replace github.com/loanflow/loanflow/contracts => ../../contracts
replace github.com/loanflow/loanflow/pkg => ../../pkg
