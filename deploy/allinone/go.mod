module github.com/loanflow/loanflow/deploy/allinone

go 1.26
replace github.com/loanflow/loanflow/contracts => ../../contracts
replace github.com/loanflow/loanflow/pkg => ../../pkg
replace github.com/loanflow/loanflow/services/ingress => ../../services/ingress
replace github.com/loanflow/loanflow/services/scoring => ../../services/scoring
replace github.com/loanflow/loanflow/services/offers => ../../services/offers
replace github.com/loanflow/loanflow/services/audit => ../../services/audit
